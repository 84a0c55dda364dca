/**
 * Lines for a person on a terminal, JSON for anything else, LOG_FORMAT to choose. The real
 * service is started with its stdout a pipe, and on a pseudo-terminal through util-linux's
 * `script`, which is how a person's `npm start` sees it.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseLogFormat, createLogger } from '../src/logger.ts';
import { createTestDatabase, type TestDatabase } from './helpers/database.ts';
import { SERVICE_ARGS } from './helpers/processes.ts';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase(import.meta.filename);
});

afterAll(() => testDb.drop());

/** Colour codes out, and a terminal's \r\n as \n: the text a person reads. */
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r\n/g, '\n');

/**
 * What the service writes to stdout from its start until it has said where it serves (the
 * `listening` or `worker running` line, or its block). Then the service is stopped.
 */
async function startOutput(env: Record<string, string>, on: 'pipe' | 'terminal'): Promise<string> {
  const serviceEnv = {
    ...process.env,
    LOG_FORMAT: undefined,
    LOG_PRETTY: undefined,
    ...{ DATABASE_URL: testDb.url, ROLE: 'api', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' },
    ...env,
  };
  // `script` gives the service a pseudo-terminal as stdout and copies what it writes to ours.
  const [command, args] =
    on === 'terminal'
      ? ['script', ['-qfec', `exec '${process.execPath}' ${SERVICE_ARGS.join(' ')}`, '/dev/null']]
      : [process.execPath, SERVICE_ARGS];
  const child = spawn(command, args, { env: serviceEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the service (${on}) did not announce itself: ${stdout}${stderr}`)), 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        // A JSON announcement, or the last line of a pretty block (API or worker).
        if (/"msg":"(listening|worker running)"|Prometheus metrics .*\n/.test(plain(stdout))) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`exited while starting: ${stdout}${stderr}`)));
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return plain(stdout);
}

const isJson = (line: string) => {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
};

function expectPretty(output: string): void {
  const lines = output.split('\n').filter(Boolean);
  expect(lines.filter(isJson)).toEqual([]);
  expect(output).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening$/m);
  expect(output).toMatch(/^ {2}Jobs page \(open in a browser\) +http:\/\/localhost:\d+\/$/m);
  expect(output).toMatch(/^ {2}GraphQL over WebSocket +ws:\/\/localhost:\d+\/graphql$/m);
}

function expectJson(output: string): void {
  const lines = output.split('\n').filter(Boolean);
  expect(lines.length).toBeGreaterThan(0);
  expect(lines.filter((line) => !isJson(line))).toEqual([]);
  const listening = lines.map((line) => JSON.parse(line) as { msg: string; urls?: { page: string } }).find((entry) => entry.msg === 'listening');
  expect(listening?.urls?.page).toMatch(/^http:\/\/localhost:\d+\/$/);
}

describe('the service process', () => {
  it('writes JSON lines to a pipe, and a person’s lines with LOG_FORMAT=pretty', async () => {
    const [piped, pretty] = await Promise.all([startOutput({}, 'pipe'), startOutput({ LOG_FORMAT: 'pretty' }, 'pipe')]);
    expectJson(piped);
    expectPretty(pretty);
  });

  it('writes a person’s lines to a terminal, and JSON lines there with LOG_FORMAT=json', async () => {
    const [terminal, json] = await Promise.all([startOutput({}, 'terminal'), startOutput({ LOG_FORMAT: 'json' }, 'terminal')]);
    expectPretty(terminal);
    expectJson(json);
  });

  it('still reads LOG_PRETTY=true, and says it is deprecated', async () => {
    const output = await startOutput({ LOG_PRETTY: 'true', OPS_PORT: '0' }, 'pipe');
    expectPretty(output);
    expect(output).toMatch(/^\[[\d:.]+\] WARN: LOG_PRETTY is deprecated: set LOG_FORMAT=pretty instead$/m);
    // With an ops server, metrics are there, and its health and readiness close the block.
    expect(output).toMatch(/^ {2}Prometheus metrics +http:\/\/localhost:(\d+)\/metrics\n {2}Ops server \(health, ready\) +http:\/\/localhost:\1\/health {2}http:\/\/localhost:\1\/ready$/m);
  });

  it('gives a worker’s ops server a block of its own, pretty', async () => {
    const output = await startOutput({ ROLE: 'worker', OPS_PORT: '0', LOG_FORMAT: 'pretty' }, 'pipe');
    expect(output).toMatch(
      /^\[[\d:.]+\] INFO: worker running\n {2}Health \/ readiness +http:\/\/localhost:(\d+)\/health {2}http:\/\/localhost:\1\/ready\n {2}Prometheus metrics +http:\/\/localhost:\1\/metrics$/m,
    );
  });
});

describe('chooseLogFormat', () => {
  it('follows LOG_FORMAT, and else whether stdout is a terminal', () => {
    expect(chooseLogFormat(undefined, true)).toBe('pretty');
    expect(chooseLogFormat(undefined, false)).toBe('json');
    expect(chooseLogFormat('json', true)).toBe('json');
    expect(chooseLogFormat('pretty', false)).toBe('pretty');
  });
});

describe('pretty lines', () => {
  it('hide secrets as JSON lines do, and keep the fields on the line', () => {
    let text = '';
    const logger = createLogger({ level: 'info', format: 'pretty' }, { write: (line) => void (text += line) });
    logger.info({ headers: { authorization: 'Bearer s3cr3t' }, apiKey: 'k3y', jobId: 'j-1' }, 'hello');
    logger.debug('below the level');
    expect(plain(text)).toMatch(/^\[[\d:.]+\] INFO: hello \{"headers":\{"authorization":"\[redacted\]"\},"apiKey":"\[redacted\]","jobId":"j-1"\}\n$/);
  });
});
