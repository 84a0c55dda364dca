/**
 * The server `npm test` starts when no other answers (test/embedded-postgres/server.ts) must leave
 * nothing behind, however the run ends: vitest runs no teardown on a signal, and none at all when
 * SIGKILLed.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { removeAbandonedServers } from './embedded-postgres/server.ts';
import { withClient } from './helpers/admin.ts';

const run = promisify(execFile);

interface Started {
  url: string;
  folder: string;
  postmaster: number;
  /** The process that started the server: stands for vitest. */
  kill(): void;
}

async function startAsARunWould(): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/start-embedded-postgres.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the fixture exited with ${code}`)));
  });
  const { url, folder } = JSON.parse(line) as { url: string; folder: string };
  const postmaster = Number(readFileSync(`${folder}/postmaster.pid`, 'utf8').split('\n')[0]);
  return { url, folder, postmaster, kill: () => child.kill('SIGKILL') };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(started: Started): Promise<boolean> {
  for (let waited = 0; waited < 10_000; waited += 100) {
    if (!existsSync(started.folder) && !isAlive(started.postmaster)) return true;
    await new Promise((done) => setTimeout(done, 100));
  }
  return false;
}

describe('the embedded test server', () => {
  it('serves, then is stopped and its folder deleted when the run that started it is SIGKILLed', async () => {
    const started = await startAsARunWould();
    const version = await withClient(started.url, async (client) => (await client.query('SHOW server_version')).rows[0]);
    expect(version).toMatchObject({ server_version: expect.stringMatching(/^18\./) });
    started.kill();
    expect(await gone(started)).toBe(true);
  });

  it('left behind by a run killed together with its supervisor, is removed by the next run', async () => {
    const started = await startAsARunWould();
    const supervisor = Number((await run('ps', ['-o', 'ppid=', '-p', String(started.postmaster)])).stdout.trim());
    process.kill(supervisor, 'SIGKILL');
    started.kill();
    await new Promise((done) => setTimeout(done, 500));
    // An orphaned server still holds its folder,
    expect(isAlive(started.postmaster)).toBe(true);
    expect(existsSync(started.folder)).toBe(true);
    // until a run starts.
    await removeAbandonedServers();
    expect(await gone(started)).toBe(true);
  });
});
