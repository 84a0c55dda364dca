import { connect, createServer } from 'node:net';

/** How long a port may take to accept a connection before it counts as not answering. */
const ANSWER_TIMEOUT_MS = 2000;

/**
 * A port nobody on 127.0.0.1 listens on right now, for a program that must be told its port.
 * Another process may take it before that program listens; callers that can, try again.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Whether anything accepts a TCP connection on host:port; the connection is closed at once. */
export function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const settle = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(ANSWER_TIMEOUT_MS, () => settle(false));
    socket.once('connect', () => settle(true));
    socket.once('error', () => settle(false));
  });
}
