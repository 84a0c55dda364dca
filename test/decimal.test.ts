import { describe, expect, it } from 'vitest';
import { addDecimals, parseDecimal } from '../src/jobs/decimal.ts';

describe('parseDecimal', () => {
  it.each([
    ['0', '0'],
    ['-0', '0'],
    ['+0', '0'],
    ['0.000', '0'],
    ['-0.0', '0'],
    ['00012', '12'],
    ['12', '12'],
    ['-12', '-12'],
    ['+12', '12'],
    ['1.50', '1.5'],
    ['1.', '1'],
    ['.5', '0.5'],
    ['-.5', '-0.5'],
    ['0.5', '0.5'],
    ['-0.5', '-0.5'],
    ['00.5', '0.5'],
    ['10.01', '10.01'],
    ['100', '100'],
    ['-100.000100', '-100.0001'],
    [' 7 ', '7'],
    ['9007199254740993', '9007199254740993'],
  ])('writes %j as %j', (input, canonical) => {
    expect(parseDecimal(input, 'n', 100)).toBe(canonical);
  });

  it('gives every sum in the form it would give the same number typed in', () => {
    for (const [a, b] of [
      ['0.1', '0.2'],
      ['1.25', '-1.25'],
      ['-0.5', '0.25'],
      ['999.999', '0.001'],
      ['-3', '1.5'],
    ] as const) {
      const sum = addDecimals(a, b);
      expect(parseDecimal(sum, 'sum', 100)).toBe(sum);
    }
  });
});
