import { Decimal } from 'decimal.js';

/**
 * decimal.js rounds every result to `precision` significant digits (20 by default, also in
 * Prisma's copy). Addition needs at most the digits of both operands plus one, and the inputs are
 * capped far below this, so no sum is ever rounded.
 */
const Exact = Decimal.clone({ precision: 1_000_000 });

// Plain decimal notation only: an exponent like 1e999999 would let a short string ask for a
// million digits.
const DECIMAL_PATTERN = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

// What `canonical` writes: no sign but a leading `-`, no leading or trailing zeros, no `-0`. A
// number already written so is its own canonical form and needs no Decimal (a worker checks every
// result it stores this way, and results are nearly always canonical already).
const CANONICAL_PATTERN = /^(?:0|-?(?:[1-9]\d*|0(?=\.))(?:\.\d*[1-9])?)$/;

/**
 * A customer's number in canonical form (no exponent, no `+`, no `-0`), or what is wrong with it,
 * worded to follow its field's name.
 */
export function checkDecimal(value: string, maxDigits: number): { value: string } | { problem: string } {
  const text = value.trim();
  if (!DECIMAL_PATTERN.test(text)) return { problem: 'must be a decimal number like 12 or -0.5' };
  const digits = text.replace(/[^0-9]/g, '').length;
  if (digits > maxDigits) return { problem: `has ${digits} digits; at most ${maxDigits} are allowed` };
  return { value: CANONICAL_PATTERN.test(text) ? text : canonical(new Exact(text)) };
}

/** Whether `text` is a decimal number written as `canonical` writes it. */
export function isCanonicalDecimal(text: string): boolean {
  return CANONICAL_PATTERN.test(text);
}

export function addDecimals(a: string, b: string): string {
  return canonical(new Exact(a).plus(b));
}

function canonical(value: Decimal): string {
  return value.isZero() ? '0' : value.toFixed();
}
