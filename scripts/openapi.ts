// Writes docs/openapi.json from the API's own route specs (npm run openapi). It builds the real
// server on a throw-away data directory, so the file is what a running Postroom serves at
// GET /api/v1/openapi.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApiServer, openApiDocument } from '../src/api/server.js';
import { validateConfig } from '../src/config/load.js';
import { openBlobStore } from '../src/store/open-blobs.js';
import { openDb } from '../src/store/db.js';
import { createLogger } from '../src/telemetry/log.js';
import { createMetrics } from '../src/telemetry/metrics.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.join(root, 'docs', 'openapi.json');
const dir = mkdtempSync(path.join(os.tmpdir(), 'postroom-openapi-'));
try {
  const token = 'openapi-generation-token';
  const config = validateConfig({ dataDir: dir, http: { apiToken: token } });
  const db = openDb(undefined, dir);
  const api = await createApiServer({
    config: config.http,
    db,
    blobs: openBlobStore(config, db),
    log: createLogger('silent'),
    metrics: createMetrics(),
    token,
  });
  const doc = await openApiDocument(api, token);
  await api.close();
  await db.close();
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
