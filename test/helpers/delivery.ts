import path from 'node:path';
import { Readable } from 'node:stream';
import type { PlannedDelivery, Target } from '../../src/core/delivery.js';
import { newId } from '../../src/core/ids.js';
import type { Envelope, StoredMessage } from '../../src/core/message.js';
import type { BlobStore } from '../../src/store/ports.js';
import { retrySchema, type RetryPolicy } from '../../src/config/retry.js';
import { keepOutbound } from '../../src/delivery/keep-outbound.js';
import { DeliveryQueue } from '../../src/delivery/queue.js';
import { DeliveryWorker, type DeliveryWorkerConfig } from '../../src/delivery/worker.js';
import { parseSchema } from '../../src/config/schema.js';
import { parseStored } from '../../src/mime/parse.js';
import { FsBlobStore } from '../../src/store/blobs.js';
import type { Db } from '../../src/store/db.js';
import { getAttempts, getDelivery, type DeliveryRecord } from '../../src/store/deliveries.js';
import { insertMessages, newMessageRow, saveParsed } from '../../src/store/messages.js';
import { createLogger } from '../../src/telemetry/log.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { waitFor } from './env.js';
import { openTestDb, type TestDb } from './test-db.js';

/** A store, a blob store and a queue on the backend this run of the suite is for. */
export interface DeliveryRig {
  db: TestDb;
  blobs: BlobStore;
  queue: DeliveryQueue;
  /** Keep a message as intake would, then parse it as the parse worker would (status stays received). */
  keep(raw: string | Buffer, env?: Partial<Envelope>, opts?: { parse?: boolean; trace?: string }): Promise<StoredMessage>;
  /** Queue one planned delivery of a kept message and wait until `until` holds for it; with its attempts. */
  deliverOne(
    m: StoredMessage,
    planned: PlannedDelivery,
    until: (d: DeliveryRecord) => boolean,
  ): Promise<{ m: StoredMessage; d: DeliveryRecord; attempts: Awaited<ReturnType<typeof getAttempts>> }>;
  /** A worker over the given targets; stopped by cleanup. */
  worker(targets: Map<string, Target<any>>, opts?: Partial<DeliveryWorkerConfig> & { retry?: RetryPolicy; publicUrl?: string }): DeliveryWorker;
  /** Stop every worker made so far (after each test: a failed test must not leave one leasing). */
  stopWorkers(): Promise<void>;
  cleanup(): Promise<void>;
}

/** A short retry policy for tests. */
export function fastRetry(p: Record<string, unknown> = {}): RetryPolicy {
  return retrySchema.parse({ schedule: ['50ms'], jitter: 0, ...p });
}

/** Build a rig; call cleanup() in after(). */
export async function deliveryRig(): Promise<DeliveryRig> {
  const db = await openTestDb();
  const blobs: BlobStore = new FsBlobStore(path.join(db.dir, 'blobs'));
  const queue = new DeliveryQueue(db);
  const workers: DeliveryWorker[] = [];
  queue.on('enqueued', () => workers.forEach((w) => w.wake()));
  const log = createLogger(process.env.POSTROOM_TEST_LOG ?? 'silent');
  return {
    db,
    blobs,
    queue,
    async keep(raw, env = {}, opts = {}) {
      const staged = await blobs.stage(Readable.from([Buffer.from(raw)]));
      const envelope: Envelope = {
        mailFrom: 'sender@example.org',
        rcptTo: ['hook@postroom.test'],
        ingress: 'smtp',
        clientIp: '127.0.0.1',
        helo: 'client.test',
        receivedAt: new Date(),
        ...env,
      };
      const row = newMessageRow(newId(), envelope, staged, { messageId: null, subject: 'test', from: null, date: null }, opts.trace ?? null);
      const [m] = await db.kysely.transaction().execute(async (trx) => {
        await blobs.commit([staged], trx);
        return insertMessages(trx, [row]);
      });
      if (opts.parse !== false) {
        const result = await parseStored(m, { blobs, config: parseSchema.parse({}) });
        await blobs.commit(result.staged, db.kysely);
        await saveParsed(db.kysely, m.id, result.save);
      }
      return m;
    },
    async deliverOne(m, planned, until) {
      const [id] = await queue.enqueue(m.id, [planned]);
      const d = await waitFor(async () => {
        const r = await getDelivery(db.kysely, id);
        return r && until(r) ? r : undefined;
      }, `delivery ${planned.route}`);
      return { m, d, attempts: await getAttempts(db.kysely, id) };
    },
    worker(targets, opts = {}) {
      const { retry, publicUrl, ...config } = opts;
      const w = new DeliveryWorker({
        db,
        blobs,
        log,
        metrics: createMetrics(),
        targets,
        config: { workers: 4, leaseTime: 5_000, pollInterval: 25, attemptTimeout: 5_000, ...config },
        retryPolicy: () => retry ?? fastRetry(),
        publicUrl,
        keepOutbound: keepOutbound({ db, blobs, onQueued: () => workers.forEach((x) => x.wake()) }),
      });
      workers.push(w);
      return w;
    },
    async stopWorkers() {
      await Promise.all(workers.splice(0).map((w) => w.stop(100)));
    },
    async cleanup() {
      await Promise.all(workers.map((w) => w.stop(100)));
      await db.cleanup();
    },
  };
}

/** Message status straight from the store. */
export async function messageStatus(db: Db, id: string): Promise<string | undefined> {
  const r = await db.kysely.selectFrom('messages').select('status').where('id', '=', id).executeTakeFirst();
  return r?.status;
}
