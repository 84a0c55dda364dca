import { cpus, totalmem } from 'node:os';
import { ADMIN_URL, withClient } from './pg.ts';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  postgres: string;
  /** Server settings that move these numbers most. Read, never changed. */
  settings: Record<string, string>;
}

const SETTINGS = ['synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', 'max_connections', 'max_wal_size'];

export async function describeMachine(): Promise<Machine> {
  const [{ version }] = await withClient(ADMIN_URL, async (client) => (await client.query('SELECT version()')).rows);
  const settings = await withClient(ADMIN_URL, async (client) => {
    const { rows } = await client.query<{ name: string; setting: string }>(
      'SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name',
      [SETTINGS],
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
  });
  const list = cpus();
  return {
    cpu: list[0]?.model ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: String(version).split(' on ')[0] ?? String(version),
    settings,
  };
}
