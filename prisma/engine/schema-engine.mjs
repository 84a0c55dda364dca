#!/usr/bin/env node
// Offline stand-in for Prisma's native `schema-engine` binary.
//
// The Prisma CLI spawns the binary named by PRISMA_SCHEMA_ENGINE_BINARY and talks JSON-RPC 2.0 to
// it over stdio, one JSON object per line. The native binary would have to be downloaded from a
// CDN these machines cannot reach, so this script answers the same protocol by delegating to the
// WebAssembly build of the same engine (@prisma/schema-engine-wasm, installed from npm), which
// reaches PostgreSQL through @prisma/adapter-pg. stdout carries protocol messages only; every
// diagnostic goes to stderr, as JSON log lines like the native engine writes.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import readline from 'node:readline';

import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';

const require = createRequire(import.meta.url);

// process.exit() can drop output still queued on a pipe (pipes are asynchronous on macOS), and the
// CLI reads our stdout and stderr through pipes. Exit only once both have been flushed.
const exit = (code) =>
  new Promise(() => process.stdout.write('', () => process.stderr.write('', () => process.exit(code))));

// ---------------------------------------------------------------------------------------------
// Load the wasm engine by hand: the package's entry point imports the .wasm file as an ES module,
// which Node 20 cannot do. Its JS bindings module doubles as the wasm's import object.
// ---------------------------------------------------------------------------------------------
const bindingsUrl = import.meta.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
const wasmEngine = await import(bindingsUrl);
{
  const bytes = fs.readFileSync(new URL('./schema_engine_bg.wasm', bindingsUrl));
  const { instance } = await WebAssembly.instantiate(bytes, { './schema_engine_bg.js': wasmEngine });
  wasmEngine.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
}

// The CLI was built against one exact engine commit. A wasm engine from another commit may differ
// in protocol or in the migrations it generates, so refuse to run rather than guess.
const engineVersion = wasmEngine.version();
const expectedVersion = require('@prisma/engines-version/package.json').prisma.enginesVersion;
if (engineVersion !== expectedVersion) {
  process.stderr.write(
    `schema-engine shim: @prisma/schema-engine-wasm is engine ${engineVersion}, but the Prisma CLI ` +
      `expects ${expectedVersion} (@prisma/engines-version). Install matching versions.\n`,
  );
  await exit(1);
}

// The engine's panic hook stores the panic message in this global (the Prisma CLI defines the same
// one) just before the wasm instance traps. After a panic the instance is unusable.
let panicMessage = null;
globalThis.PRISMA_WASM_PANIC_REGISTRY = { set_message: (message) => (panicMessage = message) };

const log = (level, message, target = 'schema_engine::shim', extra = {}) =>
  process.stderr.write(`${JSON.stringify({ level, fields: { message, ...extra }, target })}\n`);

// ---------------------------------------------------------------------------------------------
// Command line, as the CLI passes it: [--datamodels <file>]... [--datasource <json>] [cli <cmd>]
// ---------------------------------------------------------------------------------------------
const args = process.argv.slice(2);
const datamodelPaths = [];
let datasource = {};
let cliCommand = null;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--version' || arg === '-V') {
    // The CLI shows this line in `prisma -v` and looks for the engine hash inside it.
    process.stdout.write(`schema-engine-cli ${engineVersion}\n`);
    await exit(0);
  } else if (arg === '--datamodels') datamodelPaths.push(args[++i]);
  else if (arg === '--datasource') datasource = JSON.parse(args[++i]);
  else if (arg === 'cli') cliCommand = args[++i];
  else if (arg.startsWith('--')) i++; // --enabled-preview-features, --extension-types: unused here
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL plumbing
// ---------------------------------------------------------------------------------------------

// The engine's catalog queries select PostgreSQL's internal one-byte "char" type (OID 18), which
// adapter-pg refuses to map ("Column type 'char' could not be deserialized"). Its text form is
// what the engine expects, so relabel such columns as text before the adapter sees them.
const relabelChar = (result) => {
  for (const r of [result].flat()) for (const f of r?.fields ?? []) if (f.dataTypeID === 18) f.dataTypeID = 25;
  return result;
};
// PostgreSQL 18 keeps each column's NOT NULL in pg_constraint too (contype 'n'). The engine's
// constraint query lets such rows through and its describer panics on them ("unreachable": every
// `prisma migrate` command on 18 fails; prisma/orm issue 29635, open). Nullability is read from
// pg_attribute anyway, so leave them out, as the fix proposed upstream does. Before 18, 'n' rows
// are domain constraints, which that query's join on the table excludes already.
const CONSTRAINTS_FILTER = "AND contype NOT IN ('p', 'u', 'f')";
const withoutNotNullConstraints = (config) => {
  const text = typeof config === 'string' ? config : config?.text;
  if (typeof text !== 'string' || !text.includes(CONSTRAINTS_FILTER)) return config;
  const fixed = text.replace(CONSTRAINTS_FILTER, "AND contype NOT IN ('p', 'u', 'f', 'n')");
  if (typeof config === 'string') return fixed;
  // Changed in place: a pg Query object must keep its prototype.
  config.text = fixed;
  return config;
};
class CatalogClient extends pg.Client {
  query(config, values, callback) {
    config = withoutNotNullConstraints(config);
    if (typeof values === 'function') [values, callback] = [undefined, values];
    if (typeof callback === 'function') {
      return super.query(config, values, (err, res) => callback(err, err ? res : relabelChar(res)));
    }
    const pending = super.query(config, values);
    return typeof pending?.then === 'function' ? pending.then(relabelChar) : pending;
  }
}

const withDatabase = (url, database) => {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
};
const describeUrl = (url) => {
  const u = new URL(url);
  return {
    database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    location: `${u.hostname || 'localhost'}:${u.port || 5432}`,
    user: decodeURIComponent(u.username) || process.env.USER,
    schema: u.searchParams.get('schema') ?? undefined,
  };
};
const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`;

async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

// A driver adapter on `url`, with the fixes the engine needs.
async function connectAdapter(url) {
  const { schema } = describeUrl(url);
  const config = { connectionString: url, Client: CatalogClient };
  // Migrations write unqualified names; Prisma's `?schema=` must therefore also be the search_path.
  if (schema) config.options = `-c search_path=${quoteIdent(schema)}`;
  const adapter = await new PrismaPg(config, schema ? { schema } : undefined).connect();
  // adapter-pg splits scripts on ';' and runs the pieces on whatever pooled connection is free,
  // which breaks `$$` function bodies and session state. Send the script as one simple query on
  // one connection, as the native engine does (PostgreSQL runs it in one implicit transaction).
  adapter.executeScript = async (script) => {
    try {
      await adapter.underlyingDriver().query(script);
    } catch (error) {
      adapter.onError(error);
    }
  };
  return adapter;
}

const liveShadowDbs = new Set(); // dispose functions, so an interrupted run still drops them

// adapter-pg's own connectToShadowDb reuses the main database URL and drops the temporary database
// while still connected to it. Create/empty the shadow database ourselves instead.
async function connectToShadowDb() {
  const mainUrl = datasource.url;
  if (datasource.shadowDatabaseUrl) {
    const main = describeUrl(mainUrl);
    const shadow = describeUrl(datasource.shadowDatabaseUrl);
    if (main.database === shadow.database && main.location === shadow.location) {
      throw new Error('The shadow database URL points at the main database; refusing to wipe it.');
    }
    // An external shadow database may hold leftovers from earlier runs; it must start empty.
    await withClient(datasource.shadowDatabaseUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT nspname FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'`,
      );
      for (const { nspname } of rows) await client.query(`DROP SCHEMA ${quoteIdent(nspname)} CASCADE`);
      await client.query('CREATE SCHEMA public');
    });
    return connectAdapter(datasource.shadowDatabaseUrl);
  }

  const name = `prisma_shadow_${crypto.randomBytes(8).toString('hex')}`;
  await withClient(mainUrl, (client) => client.query(`CREATE DATABASE ${quoteIdent(name)}`));
  const adapter = await connectAdapter(withDatabase(mainUrl, name));
  const closePool = adapter.dispose.bind(adapter);
  const dispose = async () => {
    if (!liveShadowDbs.delete(dispose)) return;
    await closePool(); // PostgreSQL will not drop a database that still has sessions
    await withClient(mainUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`));
  };
  liveShadowDbs.add(dispose);
  adapter.dispose = dispose;
  return adapter;
}

let engineUrl; // the database the engine's main connection uses; see handle() for the exception
const adapterFactory = bindMigrationAwareSqlAdapterFactory({
  provider: 'postgres',
  adapterName: '@prisma/adapter-pg',
  connect: () => connectAdapter(engineUrl),
  connectToShadowDb,
});

// ---------------------------------------------------------------------------------------------
// Errors, shaped the way the CLI reads them
// ---------------------------------------------------------------------------------------------

// Connection failures get the native engine's user-facing codes: `migrate dev` and friends create
// the database only when `cli can-connect-to-database` reports P1003.
function connectionError(error, url) {
  const { database, location, user } = describeUrl(url);
  if (error.code === '3D000') {
    return { code: 'P1003', message: `Database \`${database}\` does not exist on the database server at \`${location}\`.` };
  }
  if (error.code === '42P04') {
    return { code: 'P1009', message: `Database \`${database}\` already exists on the database server at \`${location}\`` };
  }
  if (error.code === '28P01' || error.code === '28000') {
    return {
      code: 'P1000',
      message: `Authentication failed against database server, the provided database credentials for \`${user}\` are not valid.\n\nPlease make sure to provide valid database credentials for the database server at \`${location}\`.`,
    };
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'].includes(error.code)) {
    return {
      code: 'P1001',
      message: `Can't reach database server at \`${location}\`\n\nPlease make sure your database server is running at \`${location}\`.`,
    };
  }
  return { code: undefined, message: error.message };
}

// JSON-RPC error body in the native engine's format; the CLI reads data.message/error_code/is_panic.
function rpcError(error) {
  let message = String(error?.message ?? error);
  // A JS exception thrown inside our adapter code reaches the engine only as a registry id; put
  // its own message back in place of "External error id#N".
  const external = /External error id#(\d+)/.exec(message);
  const original = external && adapterFactory.errorRegistry.consumeError(Number(external[1]))?.error;
  if (original) message = message.replace(external[0], original.message ?? String(original));
  const isPanic = panicMessage !== null || error instanceof WebAssembly.RuntimeError;
  if (panicMessage !== null) message = panicMessage;
  return {
    code: 4466,
    // For panics the CLI shows this top-level message rather than data.message.
    message: isPanic ? `Schema engine panicked: ${message}` : 'An error happened. Check the data field for details.',
    data: {
      is_panic: isPanic,
      message,
      ...(/^P\d{4}$/.test(error?.code) ? { error_code: error.code } : {}),
      ...(error?.meta ? { meta: error.meta } : {}),
      ...(isPanic ? { backtrace: error.stack } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// `schema-engine cli <command>`: one-shot commands the CLI runs before opening the RPC session.
// On failure the CLI skips the first stderr line and parses the rest as JSON log lines, looking
// for an ERROR from target `schema_engine::logger` with fields.error_code and fields.message.
// ---------------------------------------------------------------------------------------------
async function runCliCommand(command) {
  const url = datasource.url;
  log('INFO', `Starting schema engine CLI (${command})`, 'schema_engine', { git_hash: engineVersion });
  try {
    if (!url) throw new Error('No datasource URL was given (--datasource).');
    const { database } = describeUrl(url);
    if (command === 'can-connect-to-database') {
      await withClient(url, (client) => client.query('SELECT 1'));
      process.stdout.write('Connection successful\n');
    } else if (command === 'create-database' || command === 'drop-database') {
      const sql = `${command === 'create-database' ? 'CREATE' : 'DROP'} DATABASE ${quoteIdent(database)}`;
      await withMaintenanceClient(url, (client) => client.query(sql));
      process.stdout.write(`Database '${database}' ${command === 'create-database' ? 'created' : 'dropped'} successfully.\n`);
    } else {
      throw new Error(`Unknown cli subcommand: ${command}`);
    }
    return 0;
  } catch (error) {
    const { code, message } = url ? connectionError(error, url) : { message: error.message };
    log('ERROR', message, 'schema_engine::logger', code ? { error_code: code } : {});
    return 1;
  }
}

// CREATE/DROP DATABASE must run from another database; PostgreSQL always has `postgres` or `template1`.
async function withMaintenanceClient(url, fn) {
  try {
    return await withClient(withDatabase(url, 'postgres'), fn);
  } catch (error) {
    if (error.code !== '3D000') throw error;
    return withClient(withDatabase(url, 'template1'), fn);
  }
}

if (cliCommand) await exit(await runCliCommand(cliCommand));

// ---------------------------------------------------------------------------------------------
// JSON-RPC session
// ---------------------------------------------------------------------------------------------
const send = (message) => process.stdout.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);

// Requests we send to the CLI (only `print`), keyed by id, awaiting its reply.
const pendingToCli = new Map();
let nextIdToCli = 1;
const requestCli = (method, params) =>
  new Promise((resolve, reject) => {
    const id = nextIdToCli++;
    pendingToCli.set(id, { resolve, reject });
    send({ id, method, params });
  });

let enginePromise = null;
const getEngine = (url = datasource.url) => {
  enginePromise ??= (async () => {
    if (!url) throw new Error('No datasource URL: set `datasource.url` in prisma.config.ts.');
    engineUrl = url;
    const datamodels = datamodelPaths.map((p) => [p, fs.readFileSync(p, 'utf8')]);
    // The engine's log lines are already in the native engine's JSON format.
    const forwardLog = (line) => process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
    const engine = await wasmEngine.SchemaEngine.new(
      { datamodels: datamodels.length ? datamodels : undefined },
      forwardLog,
      adapterFactory,
    );
    // The native engine enables the schema's preview features (e.g. `partialIndexes`) on its
    // connector at startup; the wasm engine only does so while diffing against the datasource,
    // and otherwise reads the shadow database without them: `migrate dev` would then re-create
    // every partial index in each new migration. A throwaway read-only diff switches them on.
    if (datamodels.some(([, content]) => /^\s*previewFeatures\s*=/m.test(content))) {
      const files = datamodels.map(([path, content]) => ({ path, content }));
      await engine
        .diff({
          from: { tag: 'schemaDatasource', files, configDir: process.cwd() },
          to: { tag: 'empty' },
          script: false,
          exitCode: null,
          filters: { externalTables: [], externalEnums: [] },
        })
        .catch((error) => log('WARN', `Could not enable the schema's preview features: ${error.message}`));
    }
    return engine;
  })();
  // A failed start (say, the server was down) should not poison later requests.
  enginePromise.catch(() => (enginePromise = null));
  return enginePromise;
};

// createMigration and evaluateDataLoss in the wasm engine get no shadow-database factory: they
// read the schema the migrations produce from a cache that devDiagnostic/diagnoseMigrationHistory
// fill. On a miss they fail with "PostgreSQL shadow DB must be provided through an external
// factory", e.g. in `migrate dev` right after it applied pending migrations. The native engine
// has no such dependency, so fill the cache with a (read-only) diagnosis and try once more.
async function withShadowDbWired(engine, method, params) {
  try {
    return await engine[method](params);
  } catch (error) {
    if (!/shadow DB must be provided through an external factory/.test(error?.message)) throw error;
    await engine.diagnoseMigrationHistory({
      migrationsList: params.migrationsList,
      optInToShadowDatabase: true,
      filters: params.filters ?? { externalTables: [], externalEnums: [] },
    });
    return engine[method](params);
  }
}

async function createDatabase(params) {
  const url = params?.datasource?.tag === 'ConnectionString' ? params.datasource.url : datasource.url;
  const { database } = describeUrl(url);
  try {
    await withMaintenanceClient(url, (client) => client.query(`CREATE DATABASE ${quoteIdent(database)}`));
  } catch (error) {
    const { code, message } = connectionError(error, url);
    throw Object.assign(new Error(message), { code });
  }
  return { databaseName: database };
}

// RPC methods whose params and results the wasm engine shares with the native one, and those
// that need adapting (see handle()).
const passThroughMethods = new Set([
  'applyMigrations', 'dbExecute', 'debugPanic', 'devDiagnostic', 'diagnoseMigrationHistory',
  'ensureConnectionValidity', 'introspect', 'introspectSql', 'markMigrationApplied',
  'markMigrationRolledBack', 'reset', 'schemaPush',
]);
const adaptedMethods = new Set(['createDatabase', 'getDatabaseVersion', 'createMigration', 'evaluateDataLoss', 'diff']);

async function handle(method, params) {
  if (!passThroughMethods.has(method) && !adaptedMethods.has(method)) {
    throw Object.assign(new Error(`Method not found: ${method}`), { rpcCode: -32601 });
  }
  if (method === 'createDatabase') return createDatabase(params);
  const engine = await getEngine().catch((error) => {
    // The native engine diffs two schema files without any database, but the wasm engine cannot
    // start without a connection. When the configured database does not exist (yet), borrow the
    // server's `postgres` database for such diffs; nothing is read from or written to it.
    const schemaOnly = (target) => target?.tag === 'empty' || target?.tag === 'schemaDatamodel';
    if (method !== 'diff' || !datasource.url || !schemaOnly(params?.from) || !schemaOnly(params?.to)) throw error;
    return getEngine(withDatabase(datasource.url, 'postgres')).catch(() => Promise.reject(error));
  });
  switch (method) {
    case 'getDatabaseVersion':
      return engine.version(params ?? undefined);
    case 'createMigration':
    case 'evaluateDataLoss':
      return withShadowDbWired(engine, method, params);
    case 'diff': {
      // The native engine sends the diff text to the CLI in a `print` request (the CLI writes it
      // to stdout, or to the --output file) and returns only the exit code; the wasm engine
      // returns the same text as `stdout` instead.
      const { stdout, ...rest } = await engine.diff(params);
      if (stdout) await requestCli('print', { content: stdout });
      return { ...rest, stdout: null };
    }
    default:
      return engine[method](params);
  }
}

// Requests run one at a time, in order, as with the native engine.
let queue = Promise.resolve();
function onRequest({ id, method, params }) {
  queue = queue.then(async () => {
    try {
      const result = await handle(method, params);
      if (id !== undefined) send({ id, result: result ?? null });
    } catch (error) {
      const body = error?.rpcCode ? { code: error.rpcCode, message: error.message } : rpcError(error);
      log('ERROR', `${method} failed: ${body.data?.message ?? body.message}`);
      if (id !== undefined) send({ id, error: body });
      if (body.data?.is_panic) await shutdown(101); // the wasm instance cannot be used after a panic
    }
  });
}

let shuttingDown = null;
function shutdown(code = 0) {
  shuttingDown ??= (async () => {
    // Shadow databases are normally disposed by the engine; drop any an interrupted command left.
    await Promise.allSettled([...liveShadowDbs].map((dispose) => dispose()));
    await exit(code);
  })();
  return shuttingDown;
}

readline.createInterface({ input: process.stdin, crlfDelay: Infinity }).on('line', (line) => {
  if (!line.trim()) return;
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    send({ id: null, error: { code: -32700, message: 'Parse error' } });
    return;
  }
  if (message.method) onRequest(message);
  else if (pendingToCli.has(message.id)) {
    const { resolve, reject } = pendingToCli.get(message.id);
    pendingToCli.delete(message.id);
    if (message.error) reject(new Error(message.error.message));
    else resolve(message.result);
  }
}).on('close', () => queue.then(() => shutdown(0)));

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(130));
process.stdout.on('error', () => shutdown(0)); // the CLI went away
