import { describe, expect, it } from 'vitest';
import { StartStop, StoppedDuringStartError } from '../src/lifecycle.ts';

/** A part whose start and stop wait until the test lets them go, and that counts its calls. */
class Gate extends StartStop {
  starts = 0;
  stops = 0;
  /** Signals the test saw in onStart, to check they abort on a stop. */
  signals: AbortSignal[] = [];
  failStart: Error | undefined;
  private releaseStart: (() => void) | undefined;
  private releaseStop: (() => void) | undefined;
  holdStart = false;
  holdStop = false;

  protected async onStart(signal: AbortSignal): Promise<void> {
    this.starts += 1;
    this.signals.push(signal);
    if (this.holdStart) await new Promise<void>((resolve) => (this.releaseStart = resolve));
    if (this.failStart) throw this.failStart;
  }

  protected async onStop(): Promise<void> {
    this.stops += 1;
    if (this.holdStop) await new Promise<void>((resolve) => (this.releaseStop = resolve));
  }

  letStartGo(): void {
    this.releaseStart?.();
  }

  letStopGo(): void {
    this.releaseStop?.();
  }
}

/** Lets pending promise callbacks run, so a call that would start work has done so. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('StartStop, the start/stop contract of every long-lived part', () => {
  it('shares one start among concurrent callers, and a second start while running does nothing', async () => {
    const part = new Gate();
    part.holdStart = true;
    const first = part.start();
    const second = part.start();
    await settle();
    expect(part.state).toBe('starting');
    part.letStartGo();
    await Promise.all([first, second]);
    await part.start();
    expect(part.starts).toBe(1);
    expect(part.state).toBe('running');
  });

  it('stops once however often stop is called, and a stop before start does nothing', async () => {
    const part = new Gate();
    await part.stop();
    expect(part.stops).toBe(0);
    await part.start();
    part.holdStop = true;
    const stops = [part.stop(), part.stop()];
    await settle();
    expect(part.state).toBe('stopping');
    part.letStopGo();
    await Promise.all(stops);
    await part.stop();
    expect(part.stops).toBe(1);
    expect(part.state).toBe('stopped');
  });

  it('lets a stop during start win: the start is aborted and unwound, and rejects', async () => {
    const part = new Gate();
    part.holdStart = true;
    const starting = part.start();
    const rejected = expect(starting).rejects.toBeInstanceOf(StoppedDuringStartError);
    await settle();
    const stopping = part.stop();
    expect(part.signals[0]?.aborted).toBe(true);
    part.letStartGo();
    await stopping;
    await rejected;
    expect(part.stops).toBe(1);
    expect(part.state).toBe('stopped');
  });

  it('unwinds a start that fails half-way, and rejects with the failure', async () => {
    const part = new Gate();
    part.failStart = new Error('port in use');
    await expect(part.start()).rejects.toThrow('port in use');
    expect(part.stops).toBe(1);
    expect(part.state).toBe('stopped');
    await part.stop();
    expect(part.stops).toBe(1);
  });

  it('starts afresh after a stop, and a start during a stop waits for it', async () => {
    const part = new Gate();
    await part.start();
    part.holdStop = true;
    const stopping = part.stop();
    const restarting = part.start();
    await settle();
    expect(part.starts).toBe(1);
    part.letStopGo();
    await stopping;
    await restarting;
    expect(part.starts).toBe(2);
    expect(part.state).toBe('running');
  });
});
