/** What every REST route shares: its shape, and reading and checking a request's body. */
import type { z } from 'zod';
import type { Caller } from '../jobs/service.ts';
import { fieldError } from '../jobs/errors.ts';

export interface Route {
  pattern: RegExp;
  methods: readonly string[];
  handle(params: string[], request: Request, caller: Caller): Promise<Response>;
}

const JSON_CONTENT_TYPE = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

/** A request body the route cannot read: too large, not JSON. */
export class BodyError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * The body as JSON, read up to `maxBytes`. Requiring a JSON content type also keeps a foreign
 * page's plain form post (which cannot send one without asking first) from submitting jobs.
 */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  if (!JSON_CONTENT_TYPE.test(request.headers.get('content-type') ?? '')) {
    throw new BodyError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as JSON, with Content-Type: application/json');
  }
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) throw new BodyError(413, 'REQUEST_ENTITY_TOO_LARGE', `the body is over ${maxBytes} bytes (MAX_BODY_BYTES)`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body?.getReader();
  for (;;) {
    const chunk = await reader?.read();
    if (!chunk || chunk.done) break;
    size += chunk.value.byteLength;
    if (size > maxBytes) {
      await reader!.cancel();
      throw new BodyError(413, 'REQUEST_ENTITY_TOO_LARGE', `the body is over ${maxBytes} bytes (MAX_BODY_BYTES)`);
    }
    chunks.push(chunk.value);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BodyError(400, 'BAD_USER_INPUT', 'the body is not valid JSON');
  }
}

/** `value` checked by a route's schema; the first problem is a 400 naming its field. */
export function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw fieldError(parsed.error.issues[0], { whole: 'body', unknownField: 'is not a field this route takes' });
}
