/**
 * The longest text the worker stores for a job (a handler's error), in UTF-16 code units: 8 KiB
 * of ASCII, at most 24 KiB in the database. A stack trace's worth of message; beyond that a
 * thrown value is more likely a dumped buffer than something a customer should be sent.
 */
export const MAX_STORED_TEXT = 8192;

/**
 * What PostgreSQL cannot hold in `text`: NUL, which it refuses (the whole write fails), and
 * UTF-16 surrogates without their other half, which have no UTF-8 form (the driver would turn
 * them into U+FFFD silently). Not a `u` regex: it must see code units, not code points.
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

/** Whether PostgreSQL stores `text` as it is: the check for what a caller sends, which is refused rather than mended. */
export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text);
}

/**
 * `text` as PostgreSQL will store it: cut to MAX_STORED_TEXT (ending in `…`), with NUL and unpaired
 * surrogates replaced by U+FFFD. The usual text passes one regex test and is returned as it is.
 */
export function storableText(text: string): string {
  let safe = text;
  if (safe.length > MAX_STORED_TEXT) {
    let end = MAX_STORED_TEXT - 1;
    // Do not cut a surrogate pair in half.
    if (isHighSurrogate(safe.charCodeAt(end - 1))) end -= 1;
    safe = `${safe.slice(0, end)}…`;
  }
  return UNSTORABLE.test(safe) ? safe.replace(UNSTORABLE_ALL, '\uFFFD') : safe;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** A thrown value as a message the database can store. */
export function storableError(thrown: unknown): string {
  try {
    return storableText(thrown instanceof Error ? String(thrown.message || thrown.name) : String(thrown));
  } catch {
    // String() throws for an object without a prototype, or with a toString that throws.
    return 'the handler threw a value that cannot be turned into text';
  }
}

/** `text` with every character but printable ASCII, tab and newline replaced by `?`. */
export function printableAscii(text: string): string {
  return text.replace(/[^\x20-\x7E\t\n]/g, '?');
}
