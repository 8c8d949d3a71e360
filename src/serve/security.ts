/**
 * Security defaults of `primer serve`:
 * - an API key (--api-key or PRIMER_API_KEY): every /v1 route and /metrics need
 *   `Authorization: Bearer KEY`, else 401 JSON (compared in constant time);
 * - a Host-header allow-list for the web UI and the dashboard's data (against DNS rebinding: a page
 *   on another site that resolves its name to 127.0.0.1 must not read the UI): loopback names, the
 *   bound address and --allow-host names;
 * - CORS only for the origin given with --cors (off by default: browsers on other origins get no
 *   access-control headers, so they cannot read responses).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errorBody } from './routes.ts';

export interface SecurityOptions {
  /** Bearer token required on /v1 and /metrics (undefined = open). */
  apiKey?: string;
  /** Origin allowed by CORS ("*" for any); undefined = no CORS headers. */
  cors?: string;
  /** The address the server binds (its name is allowed in Host). */
  host?: string;
  /** More host names the UI may be reached by. */
  allowedHosts?: string[];
}

const LOOPBACK = ['localhost', '127.0.0.1', '::1'];

/** Whether an interface address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.includes(host) || /^127\./.test(host) || host === '[::1]';
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** The host name of a Host header, without port and IPv6 brackets. */
export function hostName(header: string | undefined): string {
  if (!header) return '';
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon > 0 && isIP(h) !== 6 ? h.slice(0, colon) : h;
}

/** The path of a request target, percent-decoded as the router decodes it (undecodable: as sent). */
export function decodedPath(target: string): string {
  const path = target.split('?', 1)[0]!;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * The headers a preflight may allow. The origin is the operator's choice (--cors), so the headers its
 * pages send are granted as asked: the openai package alone sends x-stainless-* and openai-* headers,
 * and a fixed list would fail its preflight. Only header-name characters are echoed.
 */
function allowHeaders(requested: string | string[] | undefined): string {
  const asked = (Array.isArray(requested) ? requested.join(',') : requested ?? '').split(',').map((h) => h.trim().toLowerCase())
    .filter((h) => /^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(h));
  return [...new Set(['authorization', 'content-type', ...asked])].join(', ');
}

export function installSecurity(app: FastifyInstance, o: SecurityOptions): void {
  const key = o.apiKey ? digest(o.apiKey) : null;
  const allowed = new Set([...LOOPBACK, ...(o.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  if (o.host && !['0.0.0.0', '::'].includes(o.host)) allowed.add(o.host.toLowerCase());
  const wildcard = (o.allowedHosts ?? []).includes('*');

  const needsKey = (url: string) => url.startsWith('/v1/') || url === '/v1' || url.startsWith('/metrics');
  const isUi = (url: string) => url === '/' || url.startsWith('/ui') || url.startsWith('/v1/run/');

  app.addHook('onRequest', async (request: FastifyRequest, reply) => {
    // The policy applies to the route the router matched, not to the raw request line: the router
    // percent-decodes paths, so "/%761/completions" reaches /v1/completions.
    const url = request.routeOptions.url ?? decodedPath(request.url);
    if (o.cors) {
      reply.header('access-control-allow-origin', o.cors);
      reply.header('vary', 'Origin');
      if (request.method === 'OPTIONS') {
        return reply.status(204).headers({
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers': allowHeaders(request.headers['access-control-request-headers']),
          'access-control-max-age': '600',
        }).send();
      }
    }
    if (isUi(url) && !wildcard && !allowed.has(hostName(request.headers.host))) {
      return reply.status(403).send(errorBody(`host "${request.headers.host ?? ''}" is not allowed for the UI (add it with --allow-host)`, 'forbidden'));
    }
    if (key && needsKey(url)) {
      const m = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
      if (!m || !timingSafeEqual(digest(m[1]!.trim()), key)) {
        return reply.status(401).header('www-authenticate', 'Bearer').send(errorBody('missing or wrong API key: send "Authorization: Bearer <key>"', 'authentication_error', null, 'invalid_api_key'));
      }
    }
  });
}
