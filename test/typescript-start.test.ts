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

  // One test for both ways, so neither is ever skipped: each CI pass checks the way its Node takes.
  it('loads tsx only where Node cannot strip types', async () => {
    const outcome = await run(process.execPath, probeArgs).then(
      ({ stdout }) => ({ stdout }),
      (error: { stderr: string }) => ({ stderr: error.stderr }),
    );
    // The probe file uses syntax only tsx compiles: Node's stripping refuses it, so a tsx loaded
    // where it was not needed would show as the fixture's output.
    if (stripsTypes) expect(outcome).toEqual({ stderr: expect.stringContaining('ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX') });
    else expect(outcome).toEqual({ stdout: 'compiled by tsx\n' });
  });
});
