import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('config', () => {
  it('has working defaults for a fresh machine', () => {
    const config = loadConfig({});
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config).toMatchObject({
      ROLE: 'all',
      PORT: 4000,
      JOB_TIMEOUT_SECONDS: 30,
      MAX_ATTEMPTS: 5,
      LOG_PRETTY: false,
    });
  });

  it('reads and converts values, treating empty ones as unset', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://u@h:5432/db',
      PORT: '8080',
      ROLE: 'worker',
      LOG_PRETTY: 'true',
      WORKER_CONCURRENCY: '',
    });
    expect(config).toMatchObject({ PORT: 8080, ROLE: 'worker', LOG_PRETTY: true, WORKER_CONCURRENCY: 100 });
  });

  it('fails at once, naming every bad value', () => {
    const attempt = () =>
      loadConfig({ PORT: 'eighty', ROLE: 'boss', JOB_TIMEOUT_SECONDS: '0', DATABASE_URL: 'mysql://x/y' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/PORT[\s\S]*ROLE|ROLE[\s\S]*PORT/);
    expect(attempt).toThrow(/JOB_TIMEOUT_SECONDS/);
    expect(attempt).toThrow(/DATABASE_URL/);
  });

  it('rejects a retry cap below the base delay', () => {
    expect(() => loadConfig({ RETRY_BASE_DELAY_MS: '5000', RETRY_MAX_DELAY_MS: '100' })).toThrow(/RETRY_MAX_DELAY_MS/);
  });
});
