import { describe, expect, it } from 'vitest';
import { RingQueue } from '../src/worker/ring-queue.ts';

describe('RingQueue', () => {
  it('hands items out in the order they came, across wrap-arounds and growth', () => {
    const queue = new RingQueue<number>();
    const out: number[] = [];
    let next = 0;
    // Uneven pushes and shifts move the head around the ring while it grows and shrinks.
    for (let round = 0; round < 200; round += 1) {
      for (let i = 0; i < (round % 7) * 5; i += 1) queue.push(next++);
      for (let i = 0; i < (round % 5) * 6; i += 1) {
        const item = queue.shift();
        if (item !== undefined) out.push(item);
      }
    }
    out.push(...queue.drain());
    expect(out).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it('keeps its storage to the live items under a long stream that never lets it run empty', () => {
    const queue = new RingQueue<number>();
    let most = 0;
    // The worker's pattern: refill once down to half, so the queue is never empty.
    for (let i = 0; i < 100_000; i += 1) {
      if (queue.length < 50) while (queue.length < 100) queue.push(i);
      queue.shift();
      most = Math.max(most, queue.capacity);
    }
    expect(queue.length).toBeGreaterThan(0);
    expect(most).toBe(128);
  });

  it('gives its storage back once the live items are few', () => {
    const queue = new RingQueue<number>();
    for (let i = 0; i < 1000; i += 1) queue.push(i);
    expect(queue.capacity).toBe(1024);
    while (queue.length > 3) queue.shift();
    expect(queue.capacity).toBeLessThanOrEqual(16);
    expect(queue.drain()).toEqual([997, 998, 999]);
    expect(queue.capacity).toBe(16);
  });
});
