/** A job's input or result as the JSON text that PostgreSQL's jsonb will take, within a size cap. */

/**
 * What jsonb refuses in a string, as JSON.stringify writes it: `\u0000`, and a lone UTF-16
 * surrogate (a pair is written as the characters themselves, so any escaped surrogate is lone).
 * The lookbehind counts backslashes: `\\u0000` is an escaped backslash followed by text.
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

export type PayloadCheck = { json: string } | { problem: string };

/**
 * `value` as JSON text, or why it cannot be stored: it is not JSON (a function, a BigInt, a
 * cycle), it holds text PostgreSQL cannot store, or it is over `maxBytes` of UTF-8.
 */
export function toPayloadJson(value: unknown, maxBytes: number, setting = 'JOB_PAYLOAD_MAX_BYTES'): PayloadCheck {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    return { problem: `is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  // undefined (no value at all, or a function) is stored as JSON null, as JSON.stringify does inside objects.
  json ??= 'null';
  // A UTF-16 code unit is at most 3 bytes of UTF-8, so short text needs no count.
  if (json.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(json);
    if (bytes > maxBytes) return { problem: `is ${bytes} bytes as JSON; at most ${maxBytes} are allowed (${setting})` };
  }
  // JSON.stringify writes `\u` only for control characters and lone surrogates: most text has none.
  if (json.includes('\\u') && UNSTORABLE_ESCAPE.test(json)) return { problem: 'holds a NUL character or an unpaired surrogate, which PostgreSQL cannot store' };
  return { json };
}

/** A short, printable preview of a value, for an error message. */
export function preview(value: unknown, maxLength = 80): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}
