import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mailError, toProblem } from '../core/errors.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { PROBLEM_TYPE } from './problem.js';

/** The listener of `http.metrics.listen`: GET /metrics without a token, and nothing else. */
export interface MetricsServer {
  listen(): Promise<{ host: string; port: number }>;
  listening(): boolean;
  close(): Promise<void>;
}

/**
 * A plain node:http server, not a second API: it has no routes to protect, so it has no token,
 * and an address that only Prometheus reaches (a private interface) is its access control.
 */
export function createMetricsServer(opts: { listen: { host: string; port: number }; metrics: Metrics; log: Logger }): MetricsServer {
  const { metrics, log } = opts;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const fail = (status: number, err: ReturnType<typeof mailError>, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store', ...extra });
      res.end(JSON.stringify({ ...toProblem(err, path), status }));
    };
    if (path !== '/metrics') return fail(404, mailError('NOT_FOUND', `only /metrics is served on this listener, not ${path}`));
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, mailError('INVALID_REQUEST', 'GET /metrics'), { allow: 'GET, HEAD' });
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        log.error({ err }, 'metrics: collecting failed');
        fail(500, mailError('INTERNAL', 'collecting metrics failed'));
      },
    );
  });
  // A scraper that opens a connection and sends nothing must not hold it forever.
  server.requestTimeout = 30_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.listen.port, opts.listen.host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          log.info({ host: a.address, port: a.port }, 'metrics listening');
          resolve({ host: opts.listen.host, port: a.port });
        });
      });
    },
    listening: () => server.listening,
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
