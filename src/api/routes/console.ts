import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ApiDeps } from '../deps.js';

/**
 * The web console: a page shell and a handful of ES modules and one stylesheet, served by
 * Postroom itself (no CDN, no build step). The shell holds no data: every value on screen comes
 * from the same REST API everyone uses, with the caller's own credentials. These routes are
 * public because they hold nothing but code.
 */

// The browser modules stay in the source tree (tsc does not emit .css or .html); from
// dist/console/ and src/console/ alike this is the package's src/console/assets.
const ASSETS = fileURLToPath(new URL('../../../src/console/assets/', import.meta.url));

/**
 * The console's own policy: its code only, no inline script or style, no plugins, not framed
 * by others. Mail HTML never reaches this page's DOM; it is shown in a sandboxed frame.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8' };

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every asset, read once at start (a few tens of KiB). */
function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const name of readdirSync(ASSETS)) {
    const ext = name.slice(name.lastIndexOf('.'));
    const type = TYPES[ext];
    if (!type) continue;
    const body = readFileSync(ASSETS + name);
    out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return out;
}

/** htmx is not used: the console renders with html`` (one escaping helper) on plain modules. */
export async function consoleRoutes(app: FastifyInstance, _deps: ApiDeps): Promise<void> {
  const assets = loadAssets();
  const send = (name: string) => async (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const a = assets.get(name);
    if (!a) return reply.code(404).type('text/plain').send('Not found');
    reply
      .header('content-type', a.type)
      .header('etag', a.etag)
      // Revalidated each time (cheap: 304 by ETag), so an upgrade is seen without a stale mix of modules.
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-frame-options', 'DENY');
    if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.send(a.body);
  };
  app.route({ method: 'GET', url: '/', config: { public: true }, handler: send('index.html') });
  app.route({
    method: 'GET',
    url: '/console/:file',
    config: { public: true },
    handler: async (request, reply) => {
      const file = (request.params as { file: string }).file;
      // Only names we loaded: no path reaches the file system from a request.
      if (file === 'index.html' || !assets.has(file)) return reply.code(404).type('text/plain').send('Not found');
      return send(file)(request, reply);
    },
  });
}
