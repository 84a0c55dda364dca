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
    });
    // Unset: the terminal decides (chooseLogFormat).
    expect(config.LOG_FORMAT).toBeUndefined();
  });

  it('reads and converts values, treating empty ones as unset', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://u@h:5432/db',
      PORT: '8080',
      ROLE: 'worker',
      LOG_FORMAT: 'json',
      WORKER_CONCURRENCY: '',
    });
    expect(config).toMatchObject({ PORT: 8080, ROLE: 'worker', LOG_FORMAT: 'json', WORKER_CONCURRENCY: 100 });
  });

  it('reads the deprecated LOG_PRETTY as a LOG_FORMAT, which wins when both are set', () => {
    expect(loadConfig({ LOG_PRETTY: 'true' }).LOG_FORMAT).toBe('pretty');
    expect(loadConfig({ LOG_PRETTY: 'false' }).LOG_FORMAT).toBe('json');
    expect(loadConfig({ LOG_PRETTY: 'true', LOG_FORMAT: 'json' }).LOG_FORMAT).toBe('json');
    expect(() => loadConfig({ LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT/);
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

  it('listens on loopback only while the API is open, unless HOST says otherwise', () => {
    expect(loadConfig({}).HOST).toBe('127.0.0.1');
    expect(loadConfig({ API_KEYS: 'k'.repeat(16) }).HOST).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).HOST).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '127.0.0.1', API_KEYS: 'k'.repeat(16) }).HOST).toBe('127.0.0.1');
  });

  it('allows no cross-origin access by default, and reads CORS_ORIGINS as a list of origins', () => {
    expect(loadConfig({}).CORS_ORIGINS).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://b.example:8080' }).CORS_ORIGINS).toEqual([
      'https://a.example',
      'http://b.example:8080',
    ]);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://a.example/path' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
  });

  it('keeps /metrics off the API port and the ops server off API processes unless asked', () => {
    expect(loadConfig({}).METRICS_ON_API_PORT).toBe(false);
    expect(loadConfig({}).OPS_PORT).toBeUndefined();
    expect(loadConfig({ METRICS_ON_API_PORT: 'true', OPS_PORT: '9500' })).toMatchObject({
      METRICS_ON_API_PORT: true,
      OPS_PORT: 9500,
    });
  });
});
