import { createHash } from 'node:crypto';
import type { Caller } from '../jobs/service.ts';

export interface Authenticator {
  /** False when the service runs open, without keys, as in development. */
  readonly enabled: boolean;
  /** The caller an Authorization header proves, or null when it proves nothing. */
  authenticate(authorization: string | null | undefined): Caller | null;
}

// An open service (no keys at all) is a developer's own: whoever reaches it runs it, console included.
const OPEN: Caller = { owner: '', operator: true };

/**
 * Keys are kept and compared only as SHA-256 digests: the digest is the job's `owner`, so the
 * database never holds a usable key, and looking one up leaks nothing through timing. A key of
 * `adminKeys` (ADMIN_API_KEYS) is an operator's: it owns what it submits, as any key does, and
 * may also see and act on every owner's jobs (Caller.operator).
 */
export function createAuthenticator(apiKeys: readonly string[] | undefined, adminKeys: readonly string[] = []): Authenticator {
  if ((!apiKeys || apiKeys.length === 0) && adminKeys.length === 0) {
    return { enabled: false, authenticate: () => OPEN };
  }
  const owners = new Set((apiKeys ?? []).map(digest));
  const operators = new Set(adminKeys.map(digest));
  return {
    enabled: true,
    authenticate(authorization) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
      if (!match) return null;
      const owner = digest(match[1]!);
      if (operators.has(owner)) return { owner, operator: true };
      return owners.has(owner) ? { owner } : null;
    },
  };
}

function digest(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
