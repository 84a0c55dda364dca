import { extname } from 'node:path';

/**
 * The URL of the module `name` (no extension) in the folder of `base`, an import.meta.url, with
 * base's own extension: `.ts` where the sources run, `.js` in the package's compiled dist/, whose
 * compiler rewrites the paths of imports but not the text of a URL.
 */
export function siblingModule(name: string, base: string): URL {
  return new URL(`./${name}${extname(new URL(base).pathname)}`, base);
}
