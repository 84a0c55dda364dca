import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DueWakeups } from '../src/worker/due-wakeups.ts';

const DAY_MS = 86_400_000;

describe('due wake-ups', () => {
  let wakes: number[];
  let wakeups: DueWakeups;

  beforeEach(() => {
    vi.useFakeTimers();
    wakes = [];
    wakeups = new DueWakeups(() => wakes.push(Date.now()), 3, () => Date.now());
  });

  afterEach(() => {
    wakeups.clear();
    vi.useRealTimers();
  });

  it('wake once per due time, in time order, and never before it', () => {
    const start = Date.now();
    wakeups.add(300);
    wakeups.add(100);
    wakeups.add(200);
    vi.advanceTimersByTime(99);
    expect(wakes).toEqual([]);
    vi.advanceTimersByTime(500);
    expect(wakes.map((at) => at - start)).toEqual([101, 201, 301]);
    expect(wakeups.size).toBe(0);
  });

  it('wake once for times that come due together', () => {
    wakeups.add(50);
    wakeups.add(50);
    vi.advanceTimersByTime(100);
    expect(wakes).toHaveLength(1);
  });

  it('hold at most their limit, leaving the rest to the poll', () => {
    for (const inMs of [10, 20, 30, 40]) wakeups.add(inMs);
    expect(wakeups.size).toBe(3);
    vi.advanceTimersByTime(100);
    expect(wakes).toHaveLength(3);
  });

  it('wait past the longest timer Node has, without firing early', () => {
    const start = Date.now();
    wakeups.add(30 * DAY_MS);
    vi.advanceTimersByTime(29 * DAY_MS);
    expect(wakes).toEqual([]);
    vi.advanceTimersByTime(2 * DAY_MS);
    expect(wakes.map((at) => at - start)).toEqual([30 * DAY_MS + 1]);
  });

  it('forget everything when cleared', () => {
    wakeups.add(10);
    wakeups.clear();
    vi.advanceTimersByTime(100);
    expect(wakes).toEqual([]);
    expect(wakeups.size).toBe(0);
  });
});
