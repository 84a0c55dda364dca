/** JOB_KINDS_MODULE: a team's own kinds, loaded from a module at start. */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isJobKind, type JobKind, KindDefinitionError } from './define.ts';

export class KindsModuleError extends Error {
  override name = 'KindsModuleError';
}

/**
 * The kinds a module exports: its default export (one kind, or an array of kinds), or else every
 * named export made by defineKind. A module that cannot be loaded, or holds no kinds, or a
 * default export with something else in it, fails the start with a message naming the module.
 */
export async function loadKindsModule(path: string, cwd = process.cwd()): Promise<JobKind[]> {
  const where = `JOB_KINDS_MODULE=${path}`;
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(resolve(cwd, path)).href)) as Record<string, unknown>;
  } catch (error) {
    const reason = error instanceof KindDefinitionError ? error.message : error instanceof Error ? error.message : String(error);
    throw new KindsModuleError(`${where}: the module could not be loaded: ${reason}`, { cause: error });
  }
  if ('default' in module && module.default !== undefined) {
    const exported = Array.isArray(module.default) ? module.default : [module.default];
    const stray = exported.findIndex((value) => !isJobKind(value));
    if (stray >= 0) {
      throw new KindsModuleError(`${where}: its default export holds something defineKind did not make (at ${stray})`);
    }
    if (exported.length > 0) return exported as JobKind[];
  }
  const named = Object.values(module).filter(isJobKind);
  if (named.length === 0) {
    throw new KindsModuleError(`${where}: the module exports no kinds; export the values defineKind returns, or an array of them as default`);
  }
  return named;
}
