import type { CORSOptions } from 'graphql-yoga';

/** Headers as both a Fetch Request and a node:http upgrade request can give them. */
export interface RequestOrigin {
  origin: string | null | undefined;
  host: string | null | undefined;
  /** `Sec-Fetch-Site`, which browsers send with every request, navigations included. */
  fetchSite: string | null | undefined;
}

export interface OriginPolicy {
  /** CORS for Yoga: headers only for a listed origin; any other origin gets none. */
  cors(request: Request): CORSOptions;
  /**
   * Whether a browser sent this request on behalf of another site's page. The service's own page
   * and the listed origins are not foreign; a request without `Origin` or `Sec-Fetch-Site` comes
   * from no browser (curl, a backend) and is not foreign either.
   */
  isForeign(request: RequestOrigin): boolean;
}

/** The response headers a listed origin's script may read. */
const EXPOSED_HEADERS = ['location', 'x-request-id', 'retry-after'];

/**
 * Cross-origin access is opt-in (CORS_ORIGINS). A browser attaches no Authorization header on its
 * own, so the danger is an open service (no API_KEYS), which a page on any site could otherwise
 * drive through its visitors' browsers; with keys, the page would also need a key.
 */
export function createOriginPolicy(allowedOrigins: readonly string[]): OriginPolicy {
  const allowed = new Set(allowedOrigins);
  return {
    cors(request) {
      const origin = request.headers.get('origin');
      if (!origin || !allowed.has(origin)) return false;
      return { origin: [origin], credentials: true, exposedHeaders: EXPOSED_HEADERS, maxAge: 600 };
    },
    isForeign({ origin, host, fetchSite }) {
      if (origin) {
        if (allowed.has(origin)) return false;
        // The page's own requests: its origin names the host it was served from. Only the host
        // is compared, so a TLS proxy in front (https outside, http here) changes nothing.
        return !URL.canParse(origin) || new URL(origin).host !== host;
      }
      // A cross-site navigation or <img> GET carries no Origin, but a current browser says where
      // it comes from.
      return fetchSite === 'cross-site' || fetchSite === 'same-site';
    },
  };
}

export function originOfRequest(request: Request): RequestOrigin {
  return {
    origin: request.headers.get('origin'),
    host: request.headers.get('host') ?? new URL(request.url).host,
    fetchSite: request.headers.get('sec-fetch-site'),
  };
}
