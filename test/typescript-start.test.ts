/**
 * `npm start` runs the TypeScript sources on every supported Node with one command: Node's own
 * type stripping where it has it (>= 22.18), tsx's loader elsewhere (Node 20). CI runs this file
 * on both, so each side is checked on the Node that takes it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SERVICE_ARGS } from './helpers/processes.ts';

const run = promisify(execFile);
// Typed for Node 20 (the oldest supported), which has no `typescript` feature.
const stripsTypes = Boolean((process.features as { typescript?: string | false }).typescript);
/** The start script's node arguments, with a file that only tsx can run in place of src/main.ts. */
const probeArgs = [...SERVICE_ARGS.slice(0, -1), 'test/fixtures/parameter-property.ts'];

describe('the start script', () => {
  it('is node with the preload that picks the way, as the tests start the service', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['start']).toBe(['node', ...SERVICE_ARGS].join(' '));
  });

  it.runIf(stripsTypes)('runs the sources without tsx where Node strips types', async () => {
    const attempt = run(process.execPath, probeArgs);
    await expect(attempt).rejects.toMatchObject({ stderr: expect.stringContaining('ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX') });
  });

  it.skipIf(stripsTypes)('loads tsx where Node cannot strip types', async () => {
    const { stdout } = await run(process.execPath, probeArgs);
    expect(stdout).toBe('compiled by tsx\n');
  });
});
