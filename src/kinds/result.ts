/** A handler's result as the JSON to store: checked by its kind's result schema and the size cap. */
import { type JobKind, PermanentJobError } from './define.ts';
import { preview, toPayloadJson } from './payload.ts';

/**
 * The handler's value as the JSON to store, checked by the kind's result schema. A value that
 * fails it is a bug in the handler: the job fails at once with the schema's message, as a retry
 * would return the same, and nothing that breaks the kind's contract is stored.
 */
export function storableResult(kind: JobKind, value: unknown, maxBytes: number): string {
  const checked = kind.result.safeParse(value);
  if (!checked.success) {
    const [issue] = checked.error.issues;
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new PermanentJobError(
      `the handler returned ${preview(value)}, which fails the result schema of ${kind.name}${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const payload = toPayloadJson(checked.data, maxBytes);
  if ('problem' in payload) throw new PermanentJobError(`the result ${payload.problem}`);
  return payload.json;
}
