/**
 * The service as a library, for a team that runs it inside its own Node process: start it (or
 * only its worker) with the team's kinds, and enqueue jobs inside the team's own transactions.
 */
import type { ClientBase } from 'pg';
import type { z } from 'zod';
import type { Queryable } from './db/database.ts';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_PAYLOAD_MAX_BYTES, loadConfig } from './config.ts';
import { JobIdGenerator } from './jobs/ids.ts';
import { type JobSubmission, toNewJob } from './jobs/job-input.ts';
import { type InsertedJob, insertJobsStatement, type OnUnique } from './jobs/sql/insert.ts';
import { JobServiceError } from './jobs/errors.ts';
import type { JobKind } from './kinds/define.ts';
import { KindRegistry } from './kinds/registry.ts';
import { createLogger, type Logger } from './logger.ts';
import { Runtime } from './runtime.ts';

export interface StartServiceOptions {
  /** Kinds to run next to the built-in ones. */
  kinds?: readonly JobKind[];
  /**
   * Settings by their environment names (README, "Settings"), over the process's environment:
   * `{ DATABASE_URL, ROLE: 'worker' }` runs only a worker. Checked as at `npm start`.
   */
  settings?: Record<string, string | undefined>;
  logger?: Logger;
}

/** Starts the service with `kinds`; stop it with the returned runtime's stop(). */
export async function startService(options: StartServiceOptions = {}): Promise<Runtime> {
  const config = loadConfig({ ...process.env, ...options.settings });
  const logger = options.logger ?? createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT ?? 'json' });
  const runtime = new Runtime(config, logger, { kinds: options.kinds });
  await runtime.start();
  return runtime;
}

export interface EnqueueOptions {
  idempotencyKey?: string | null;
  /**
   * While a job of this kind and owner with the same key is pending or running, no other is added:
   * `onUnique` says whether the call then throws CONFLICT (`refuse`, the default) or answers with
   * that job (`existing`, created: false).
   */
  uniqueKey?: string | null;
  onUnique?: OnUnique | null;
  runAt?: Date | null;
  priority?: number | null;
  maxAttempts?: number | null;
  /** Jobs of one key run at most the kind's `concurrencyPerKey` at once (and start as its per-key `rateLimit` allows), in submission order. */
  concurrencyKey?: string | null;
  /** The API key the job belongs to, when the service runs with API_KEYS; '' (the default) otherwise. */
  owner?: string;
  /** The largest input, as UTF-8 JSON; JOB_PAYLOAD_MAX_BYTES's default unless told. */
  maxInputBytes?: number;
}


/**
 * Adds a job through `client`, a `pg` client the caller holds inside a transaction of its own:
 * the job exists if and only if that transaction commits, and workers hear of it at the commit
 * (a NOTIFY is sent then, never before). The input is checked by the kind's schema first; a
 * refusal is a JobServiceError with code BAD_USER_INPUT, and nothing is written. An idempotency
 * key already used answers with the first job (`created: false`). A key that another transaction
 * is inserting at the same moment fails the statement with a unique violation, which aborts the
 * caller's transaction: retry the transaction. So does a unique key taken by another
 * transaction at the same moment; one held by a committed job answers as `onUnique` says.
 */
export async function enqueue<In extends z.ZodType>(
  client: ClientBase,
  kind: JobKind<In, z.ZodType>,
  input: z.input<In>,
  options: EnqueueOptions = {},
): Promise<InsertedJob> {
  const { owner = '', maxInputBytes = DEFAULT_PAYLOAD_MAX_BYTES, ...rest } = options;
  const submission: JobSubmission = { kind: kind.name, input, ...rest };
  const job = toNewJob(submission, { job: '', input: 'input.' }, {
    kinds: new KindRegistry([kind as JobKind]),
    owner,
    ids: new JobIdGenerator(),
    limits: { maxAttempts: DEFAULT_MAX_ATTEMPTS, maxInputBytes },
  });
  const stored = (await insertJobsStatement(clientQueryable(client), [job])).get(job.id)!;
  if (stored.outcome === 'conflict') {
    throw new JobServiceError('CONFLICT', `idempotencyKey was first used for job ${stored.job.id}, with other input`, 'idempotencyKey');
  }
  if (stored.outcome === 'held') {
    throw new JobServiceError('CONFLICT', `uniqueKey is held by job ${stored.job.id}, which is ${stored.job.status}`, 'uniqueKey');
  }
  return { job: stored.job, created: stored.outcome === 'created' };
}

function clientQueryable(client: ClientBase): Queryable {
  return {
    async query(statement, values = []) {
      const result = await client.query({ name: statement.name, text: statement.text, values: [...values] });
      return result.rows;
    },
  };
}
