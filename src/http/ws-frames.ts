import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/**
 * The one place that patches a private part of `ws` (8.23.0, pinned in package.json), and what it
 * relies on; test/ws-frames.test.ts fails when a new ws changes any of it:
 * - a connected WebSocket has a `_sender` whose `sendFrame(list, callback)` is given every frame
 *   the socket sends (messages, pings, pongs, the close frame) as the buffers of one frame;
 * - writing those buffers to the TCP socket in order is all `sendFrame` does.
 * When `_sender.sendFrame` is missing, nothing is patched and ws writes as it always did: only the
 * gathering is lost.
 *
 * Why: one change can make many messages for one socket (a client that follows 100 operations on
 * it). Written one by one, each frame cost a syscall: 10,000 subscribers of one job meant 20,000
 * writes (`next` and `complete`). Corking the TCP socket made that one syscall per burst, but
 * each frame was still two writes through Node's stream machinery (ws writes a header and a
 * payload), each with its own buffered entry and callback: a quarter of the service's time for
 * that change, and much of its garbage. Measured again when this moved here (an ad-hoc script:
 * 20,000 messages sent in one burst on one socket, CPU until the burst was written, the medians
 * of two runs of five): one write per frame 49 and 53 ms, corked 24 and 25 ms, gathered 16 and 11 ms.
 *
 * So the frames ws makes for a socket are gathered and copied into one buffer, written once on the
 * next tick (which Node runs after the burst's promise callbacks), or sooner, after
 * FRAMES_PER_WRITE frames, so the client can start reading while the rest of the burst is made.
 * Every frame ws sends passes through `sendFrame`, so their order is kept, and each frame's
 * callback runs once the write that carried it is done. Nothing waits on a timer.
 */
export const FRAMES_PER_WRITE = 64;

type FrameCallback = ((error?: Error | null) => void) | undefined;

interface FrameSender {
  sendFrame(list: Array<Buffer | string>, callback?: FrameCallback): void;
}

/** ws's sender of a socket, when it has the shape this module relies on. */
function senderOf(socket: WebSocket): FrameSender | undefined {
  const sender = (socket as unknown as { _sender?: Partial<FrameSender> | null })._sender;
  return typeof sender?.sendFrame === 'function' ? (sender as FrameSender) : undefined;
}

/**
 * Routes the frames ws sends on `socket` through gathered writes to `tcp`, the socket's own TCP
 * connection. Answers whether it could; when it could not, the socket sends as before.
 */
export function gatherFrameWrites(socket: WebSocket, tcp: Duplex): boolean {
  const sender = senderOf(socket);
  if (!sender) return false;
  let parts: Array<Buffer | string> = [];
  let callbacks: FrameCallback[] = [];
  let frames = 0;
  const flush = () => {
    if (frames === 0) return;
    const written = parts;
    const waiting = callbacks;
    parts = [];
    callbacks = [];
    frames = 0;
    tcp.write(concatenate(written), (error) => {
      for (const callback of waiting) callback?.(error);
    });
  };
  sender.sendFrame = (list, callback) => {
    if (frames === 0) process.nextTick(flush);
    frames += 1;
    for (const part of list) parts.push(part);
    if (callback) callbacks.push(callback);
    if (frames >= FRAMES_PER_WRITE) flush();
  };
  return true;
}

function concatenate(parts: Array<Buffer | string>): Buffer {
  let size = 0;
  for (const part of parts) size += typeof part === 'string' ? Buffer.byteLength(part) : part.length;
  const buffer = Buffer.allocUnsafe(size);
  let offset = 0;
  for (const part of parts) offset += typeof part === 'string' ? buffer.write(part, offset) : part.copy(buffer, offset);
  return buffer;
}
