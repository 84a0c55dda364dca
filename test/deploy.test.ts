/**
 * The deployment files, checked as far as this machine allows. There is no Docker engine and no
 * systemd as PID 1 here, so the compose file and the units are not run: they are parsed, checked
 * against package.json and the settings the service accepts, and the units go through
 * `systemd-analyze verify`. The Procfile is run for real, line by line through `sh -c` as a
 * Procfile runner does, on an empty database.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config.ts';
import { databaseUrl, withAdmin } from './helpers/admin.ts';
import { type ServiceProcess, startService } from './helpers/processes.ts';

const run = promisify(execFile);
const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
const MIGRATIONS = readdirSync('prisma/migrations', { withFileTypes: true }).filter((entry) => entry.isDirectory()).length;
/** The HTTP server's own close grace at shutdown (HttpServer's closeGraceMs default). */
const HTTP_CLOSE_GRACE_S = 5;

/** The `ROLE=x` prefix of an npm script and the command after it. */
function npmScript(name: string): { role: string | undefined; command: string } {
  const script = scripts[name];
  expect(script, `package.json has a "${name}" script`).toBeDefined();
  const match = /^(?:ROLE=(\w+) )?(.*)$/.exec(script!)!;
  return { role: match[1], command: match[2]! };
}

describe('Procfile', () => {
  const entries = new Map(
    readFileSync('Procfile', 'utf8')
      .split('\n')
      .map((line) => /^([\w-]+):\s*(.+)$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1]!, match[2]!.trim()]),
  );
  let name: string;
  const started: ServiceProcess[] = [];

  beforeAll(async () => {
    // Empty, not cloned from the migrated template: the release step must build the schema.
    name = `test_deploy_${process.pid}`;
    await withAdmin(async (admin) => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${name}`);
    });
  });

  afterAll(async () => {
    await Promise.all(started.map((service) => service.stop()));
    await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });

  it('names a release step, a web process and a worker, each an npm script of this package', () => {
    expect([...entries.keys()].sort()).toEqual(['release', 'web', 'worker']);
    expect(entries.get('release')).toBe(`npx ${scripts['migrate']}`);
    expect(entries.get('web')).toBe('npm run api');
    expect(npmScript('api').role).toBe('api');
    expect(entries.get('worker')).toMatch(/ npm run worker$/);
    expect(npmScript('worker').role).toBe('worker');
  });

  it('runs: the release migrates an empty database, then web and worker serve and run a job', async () => {
    const env = { ...process.env, DATABASE_URL: databaseUrl(name) };
    await run('sh', ['-c', entries.get('release')!], { env, timeout: 120_000 });
    const { stdout } = await run('npx', ['prisma', 'migrate', 'status'], { env, timeout: 60_000 });
    expect(stdout).toMatch(/Database schema is up to date/);
    const client = new pg.Client({ connectionString: databaseUrl(name) });
    await client.connect();
    const { rows } = await client
      .query<{ count: number }>('SELECT count(*)::int AS count FROM "_prisma_migrations" WHERE finished_at IS NOT NULL')
      .finally(() => client.end());
    expect(rows[0]!.count).toBe(MIGRATIONS);

    // A Procfile runner gives each process a PORT; 0 picks a free one.
    const web = await startService({ DATABASE_URL: databaseUrl(name), PORT: '0' }, { shell: entries.get('web')! });
    started.push(web);
    const worker = await startService({ DATABASE_URL: databaseUrl(name), PORT: '0' }, { shell: entries.get('worker')! });
    started.push(worker);
    for (const service of [web, worker]) {
      // The release step applied everything: the processes found nothing left to do.
      expect(service.logs.filter((entry) => entry['msg'] === 'applied migration')).toEqual([]);
      expect((await fetch(`http://127.0.0.1:${service.port}/ready`)).status).toBe(200);
    }
    expect(worker.logs.some((entry) => entry['msg'] === 'worker started')).toBe(true);
    expect(web.logs.some((entry) => entry['msg'] === 'worker started')).toBe(false);
    // The worker process serves health, readiness and metrics, and no API.
    const ops = `http://127.0.0.1:${worker.port}`;
    expect(await (await fetch(`${ops}/health`)).json()).toEqual({ status: 'ok' });
    const missing = await fetch(`${ops}/graphql`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');

    const added = await fetch(`http://127.0.0.1:${web.port}/api/v1/add/40/2`, { method: 'POST' });
    const { jobId } = (await added.json()) as { jobId: string };
    let job: { status: string; result: string | null } = { status: 'pending', result: null };
    for (let i = 0; i < 200 && job.status !== 'retrieved'; i += 1) {
      job = (await (await fetch(`http://127.0.0.1:${web.port}/api/v1/job/${jobId}`)).json()) as typeof job;
      if (job.status !== 'retrieved') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(job).toMatchObject({ status: 'retrieved', result: '42' });
    // The worker in the other process ran it, as its own counter says.
    expect(await (await fetch(`${ops}/metrics`)).text()).toMatch(/^jobs_completed_total(\{[^}]*\})? 1$/m);

    // SIGTERM to the process group, as Heroku and foreman send it: a graceful stop, exit 0.
    for (const service of started.splice(0)) {
      await service.stop();
      expect(service.logs.filter((entry) => entry['msg'] === 'shutting down')).toHaveLength(1);
      expect(service.logs.some((entry) => entry['msg'] === 'second signal: exiting at once')).toBe(false);
    }
  }, 120_000);
});

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
  volumes?: string[];
  build?: { context: string; dockerfile: string };
}

function seconds(duration: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(duration);
  expect(match, `a duration like 30s: ${duration}`).not.toBeNull();
  const value = Number(match![1]);
  return match![2] === 'ms' ? value / 1000 : match![2] === 'm' ? value * 60 : value;
}

/** A service's environment, with compose's `${NAME:-default}` read as if nothing were set. */
function environmentOf(service: ComposeService): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([key, value]) => [key, value.replace(/\$\{\w+:-([^}]*)\}/g, '$1')]),
  );
}

describe('deploy/docker-compose.yml', () => {
  const compose = parseYaml(readFileSync('deploy/docker-compose.yml', 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const { services } = compose;
  const start = scripts['start']!;

  it('runs PostgreSQL, the migrations once, 2 APIs, 3 workers and a load balancer', () => {
    expect(Object.keys(services).sort()).toEqual(['api-1', 'api-2', 'lb', 'migrate', 'postgres', 'worker']);
    expect(services['worker']!.deploy?.replicas).toBe(3);
    expect(services['migrate']!.command!.join(' ')).toBe(`npx ${scripts['migrate']}`);
    expect(services['migrate']!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });

  it('starts each process as its npm script does, after the migrations, with settings the service accepts', () => {
    for (const [name, role] of [
      ['api-1', 'api'],
      ['api-2', 'api'],
      ['worker', 'worker'],
    ] as const) {
      const service = services[name]!;
      // `npm run api` is `ROLE=api <start>`; the container runs <start> itself with ROLE set, so
      // that docker stop's SIGTERM reaches node (see deploy/Dockerfile).
      expect(npmScript(role)).toEqual({ role, command: start });
      expect(service.command!.join(' ')).toBe(start);
      expect(service.environment!['ROLE']).toBe(role);
      expect(service.depends_on).toEqual({ migrate: { condition: 'service_completed_successfully' } });
      const config = loadConfig(environmentOf(service));
      expect(config.DATABASE_URL).toMatch(/@postgres:5432\//);
      // Docker's SIGKILL must not cut the graceful stop short.
      expect(seconds(service.stop_grace_period!)).toBeGreaterThan(config.SHUTDOWN_GRACE_MS / 1000 + HTTP_CLOSE_GRACE_S);
      const port = role === 'api' ? config.PORT : config.OPS_PORT;
      expect(service.healthcheck!.test.join(' ')).toContain(`http://127.0.0.1:${port}/ready`);
    }
  });

  it('builds from a Dockerfile whose command is the start script, and balances on /ready', () => {
    const build = services['api-1']!.build!;
    expect(existsSync(`deploy/${build.context}/${build.dockerfile}`)).toBe(true);
    const dockerfile = readFileSync(`deploy/${build.context}/${build.dockerfile}`, 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
    expect((JSON.parse(cmd![1]!) as string[]).join(' ')).toBe(start);
    for (const copied of dockerfile.matchAll(/^COPY (.+) \S+$/gm)) {
      for (const source of copied[1]!.split(' ')) expect(existsSync(source), `${source} exists`).toBe(true);
    }

    const [config] = services['lb']!.volumes!.map((volume) => volume.split(':')[0]!);
    const haproxy = readFileSync(`deploy/${config}`, 'utf8');
    expect(haproxy).toMatch(/^\s*option httpchk GET \/ready$/m);
    const servers = [...haproxy.matchAll(/^\s*server (\S+) (\S+):(\d+) check\b/gm)];
    expect(servers.map((server) => server[1])).toEqual(['api-1', 'api-2']);
    for (const [, , host, port] of servers) {
      expect(loadConfig(environmentOf(services[host!]!)).PORT).toBe(Number(port));
    }
  });
});

/** A unit file's keys; a key given twice (Environment=) keeps every value. */
function parseUnit(path: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    const pair = /^(\w+)=(.*)$/.exec(line);
    if (pair) keys.set(`${section}.${pair[1]}`, [...(keys.get(`${section}.${pair[1]}`) ?? []), pair[2]!]);
  }
  return keys;
}

/** KEY=value lines of an environment file, comments left out. */
function parseEnvFile(path: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(path, 'utf8')
      .split('\n')
      .map((line) => /^([A-Z_]+)=(.*)$/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1]!, match[2]!]),
  );
}

describe('deploy/systemd', () => {
  const dir = 'deploy/systemd';
  const envFile = parseEnvFile(`${dir}/job-service.env`);

  it('passes systemd-analyze verify', async () => {
    const units = readdirSync(dir).filter((file) => /\.(service|target)$/.test(file));
    expect(units.sort()).toEqual([
      'job-service-api@.service',
      'job-service-migrate.service',
      'job-service-worker@.service',
      'job-service.target',
    ]);
    // It exits 0 on unknown keys and bad values, and only says so on stderr.
    const { stderr } = await run('systemd-analyze', ['verify', ...units.map((unit) => `${dir}/${unit}`)]);
    expect(stderr).toBe('');
  });

  it.each([
    ['job-service-api@.service', 'api', 'PORT'],
    ['job-service-worker@.service', 'worker', 'OPS_PORT'],
  ] as const)('%s restarts, stops gracefully within its timeout, and runs the start script', (file, role, portKey) => {
    const unit = parseUnit(`${dir}/${file}`);
    expect(unit.get('Service.Restart')).toEqual(['always']);
    expect(unit.get('Service.KillSignal')).toEqual(['SIGTERM']);
    expect(unit.get('Service.ExecStart')).toEqual([`/usr/bin/${scripts['start']}`]);
    expect(npmScript(role).command).toBe(scripts['start']);
    expect(unit.get('Unit.After')![0]).toContain('job-service-migrate.service');
    const environment = Object.fromEntries(unit.get('Service.Environment')!.map((pair) => pair.split('=') as [string, string]));
    expect(environment).toMatchObject({ ROLE: role, [portKey]: '%i' });
    // The settings the process would get, with the instance name a port.
    const config = loadConfig({ ...envFile, ...environment, [portKey]: '4001', API_KEYS: 'k'.repeat(16) });
    expect(Number(unit.get('Service.TimeoutStopSec')![0])).toBeGreaterThan(
      config.SHUTDOWN_GRACE_MS / 1000 + HTTP_CLOSE_GRACE_S,
    );
  });

  it('migrates with the package script the Procfile and compose file name', () => {
    const unit = parseUnit(`${dir}/job-service-migrate.service`);
    expect(unit.get('Service.Type')).toEqual(['oneshot']);
    expect(unit.get('Service.ExecStart')).toEqual(['/usr/bin/npm run migrate']);
    expect(scripts['migrate']).toBe('prisma migrate deploy');
  });
});
