import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { newId } from '../../src/core/ids.js';
import type { Db } from '../../src/store/db.js';
import { LocalLeases, type openLeases } from '../../src/store/leases.js';
import { insertMessages, newMessageRow } from '../../src/store/messages.js';
import { openBlobStore } from '../../src/store/open-blobs.js';
import { Retention, type RetentionPolicy } from '../../src/store/retention.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { openTestDb } from './test-db.js';

export const DAY = 86_400_000;
const NO_ROUTE = 'no route took any recipient';

export interface Kept {
  id: string;
  sha256: string;
}

/** A store with a blob store of the given kind, and a way to keep messages as they would stand after delivery. */
export async function rig(kind: 'fs' | 'db') {
  const db = await openTestDb();
  const blobs = openBlobStore({ dataDir: db.dir, store: { blobs: kind } }, db);
  let n = 0;
  /**
   * Keep a message received `ageMs` ago, parsed and planned: `routes` are its deliveries (route →
   * status); none: no route took it. `size`: bytes of body (the raw is a little larger).
   */
  async function keep(o: { ageMs: number; routes?: Record<string, string>; size?: number; parsed?: boolean }): Promise<Kept> {
    n++;
    const raw = Buffer.concat([Buffer.from(`Subject: m${n}\r\nMessage-ID: <m${n}.${randomBytes(4).toString('hex')}@test>\r\n\r\n`), randomBytes(o.size ?? 100)]);
    const staged = await blobs.stage(Readable.from([raw]));
    const receivedAt = new Date(Date.now() - o.ageMs);
    const row = newMessageRow(newId(), { mailFrom: 'a@test', rcptTo: ['b@test'], ingress: 'smtp', receivedAt }, staged, { messageId: null, subject: `m${n}`, from: null, date: null }, null);
    const routes = Object.entries(o.routes ?? {});
    const parsed = o.parsed !== false;
    Object.assign(row, {
      parse_status: parsed ? 'parsed' : 'pending',
      parsed_at: parsed ? receivedAt.toISOString() : null,
      status: !parsed ? 'received' : routes.length ? (routes.every(([, s]) => s === 'done') ? 'delivered' : 'routed') : 'received',
      error: parsed && !routes.length ? NO_ROUTE : null,
    });
    await db.kysely.transaction().execute(async (trx) => {
      await blobs.commit([staged], trx);
      await insertMessages(trx, [row]);
      for (const [i, [route, status]] of routes.entries()) {
        const now = new Date().toISOString();
        await trx
          .insertInto('deliveries')
          .values({ id: `${row.id}-${i}`, message: row.id, route, target_index: 0, kind: 'discard', params: '{}', recipients: '["b@test"]', captures: '{}', recipient_captures: null, destination: '', status, attempts: 1, first_attempt_at: now, next_attempt_at: now, lease_owner: null, lease_until: null, last_error: null, receipt: null, created_at: now, updated_at: now })
          .execute();
      }
    });
    return { id: row.id, sha256: staged.sha256 };
  }
  const retention = (policy: Partial<RetentionPolicy>, o: { db?: Db; batchSize?: number; leases?: ReturnType<typeof openLeases> } = {}) =>
    new Retention({
      db: o.db ?? db,
      blobs: o.db ? openBlobStore({ dataDir: db.dir, store: { blobs: kind } }, o.db) : blobs,
      leases: o.leases ?? new LocalLeases(),
      policy: { defaults: {}, routes: {}, ...policy },
      batchSize: o.batchSize ?? 500,
      // No intake is in flight in these tests: blobs no row names go at once.
      graceMs: 0,
      metrics: createMetrics(),
    });
  const ids = async () => new Set((await db.kysely.selectFrom('messages').select('id').execute()).map((r) => r.id));
  return { db, blobs, keep, retention, ids };
}

