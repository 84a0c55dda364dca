import { type DestinationStream, pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { Config } from './config.ts';

export type { Logger };

/** `pretty`: lines for a person at a terminal; `json`: one object a line, for a collector. */
export type LogFormat = 'pretty' | 'json';

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
const REDACT = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  '*.authorization',
  'req.headers["x-api-key"]',
  'headers["x-api-key"]',
  'apiKey',
  '*.apiKey',
  'databaseUrl',
  'DATABASE_URL',
];

/**
 * LOG_FORMAT when it is set; otherwise a person's lines on a terminal, and JSON wherever else
 * stdout goes (a file, a pipe, a process manager's collector), as machines read it there.
 */
export function chooseLogFormat(setting: LogFormat | undefined, stdoutIsTerminal: boolean): LogFormat {
  return setting ?? (stdoutIsTerminal ? 'pretty' : 'json');
}

/** `destination` (stdout by default) lets a test read the lines, in either format. */
export function createLogger(
  options: { level: Config['LOG_LEVEL']; format: LogFormat },
  destination?: DestinationStream,
): Logger {
  const settings = {
    level: options.level,
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (options.format === 'pretty') {
    // Each line made readable where it is written, synchronously: no transport thread, and a
    // line logged just before process.exit() is not lost.
    const prettify = prettyFactory({
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    const out = destination ?? pino.destination({ dest: 1, sync: true });
    return pino(settings, { write: (line: string) => void out.write(prettify(line)) });
  }
  return destination ? pino(settings, destination) : pino(settings);
}
