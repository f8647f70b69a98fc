import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { INLINE_LIMIT } from '../../src/store/blobs.js';
import { DbBlobStore } from '../../src/store/pg-blobs.js';
import { S3BlobStore } from '../../src/store/s3-blobs.js';
import { openDb } from '../../src/store/db.js';
import { freePort, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { S3RVER_CREDENTIALS, s3rverSkip, startS3rver, useS3rverCredentials } from '../helpers/s3rver.js';
import { startServeChild, type ServeChild } from '../helpers/serve-child.js';
import { RawSmtp } from '../helpers/swaks.js';
import { pgTestSchema } from '../helpers/test-db.js';

// Scale-out on object storage: three `postroom serve` processes sharing one PostgreSQL schema
// and one bucket (s3rver), raw SMTP sessions sending to all three, one node killed with SIGKILL
// mid-load. Every message that got a 250 is readable afterwards, byte for byte, from another
// node: no acknowledged row without its object.

const NODES = 3;
const SESSIONS_PER_NODE = 3;
const PER_SESSION = 25;

function message(tag: string): Buffer {
  // Every third is small (kept in the database); the rest are objects in the bucket.
  const big = Number(tag.split('-').pop()) % 3 !== 0;
  const body = big ? `${randomBytes(200 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n` : `small ${randomBytes(8).toString('hex')}\r\n`;
  return Buffer.from(`From: load@client.test\r\nTo: ${tag}@postroom.test\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@client.test>\r\n\r\n${body}`);
}

it(
  'raw-smtp-s3rver: three nodes on one PostgreSQL schema and one bucket, one killed with SIGKILL mid-load: every 250 is readable afterwards',
  { timeout: 600_000, skip: s3rverSkip('three nodes on object storage') },
  async (t) => {
    if (testBackend() !== 'postgres') {
      return t.skip(`runs on the postgres backend only (this run is ${testBackend()}): three nodes share one PostgreSQL database`);
    }
    useS3rverCredentials();
    const tmp = tempDir();
    const s3 = await startS3rver();
    const pgs = await pgTestSchema();
    const servers: ServeChild[] = [];
    let db: ReturnType<typeof openDb> | undefined;
    // In this order: a node still running would hold the schema's locks, and DROP SCHEMA wait.
    t.after(async () => {
      await Promise.all(servers.map((s) => (s.child.kill('SIGKILL'), s.exited)));
      await db?.close();
      await pgs.drop();
      await s3.stop();
      tmp.cleanup();
    });
    const configFile = path.join(tmp.dir, 'postroom.yaml');
    writeFileSync(configFile, JSON.stringify({ log: { level: 'warn' }, store: { blobs: 's3', s3: s3.storeConfig('nodes') } }));
    const ports = await Promise.all(Array.from({ length: NODES }, async () => ({ smtp: await freePort(), http: await freePort() })));
    // One after another: the first migrates the schema, and a loaded machine starts them in time.
    for (let i = 0; i < NODES; i++) {
      servers[i] = await startServeChild(
        ['--config', configFile],
        {
          ...S3RVER_CREDENTIALS,
          POSTROOM_DATA_DIR: path.join(tmp.dir, `node${i}`),
          POSTROOM_SMTP_LISTEN: `127.0.0.1:${ports[i].smtp}`,
          POSTROOM_HTTP_LISTEN: `127.0.0.1:${ports[i].http}`,
          POSTROOM_DATABASE_URL: pgs.url,
          POSTROOM_API_TOKEN: 'three-nodes-token-0123456789',
        },
        tmp.dir,
      );
    }

    /** Acknowledged messages: tag → sha256 of the bytes sent. */
    const acked = new Map<string, string>();
    const refused: string[] = [];
    let attempted = 0;
    const session = async (node: number, s: number) => {
      let c: RawSmtp;
      try {
        c = await RawSmtp.connect(ports[node].smtp);
        await c.reply();
        c.socket.write('EHLO client.test\r\n');
        await c.reply();
      } catch {
        return;
      }
      try {
        for (let m = 0; m < PER_SESSION; m++) {
          const tag = `n${node}-s${s}-${m}`;
          const raw = message(tag);
          attempted++;
          for (const cmd of ['MAIL FROM:<load@client.test>', `RCPT TO:<${tag}@postroom.test>`, 'DATA']) {
            c.socket.write(`${cmd}\r\n`);
            const r = await c.reply(60_000);
            if (!/^(250|354)/.test(r)) throw new Error(`${tag} ${cmd}: ${r}`);
          }
          c.socket.write(raw);
          c.socket.write('.\r\n');
          const r = await c.reply(120_000);
          if (r.startsWith('250')) acked.set(tag, createHash('sha256').update(raw).digest('hex'));
          else refused.push(`${tag}: ${r}`);
        }
      } catch (err) {
        // The killed node: its sessions end here, the message in flight unacknowledged.
        if (node !== 0) throw err;
      } finally {
        c.socket.destroy();
      }
    };
    const load = Promise.all(Array.from({ length: NODES * SESSIONS_PER_NODE }, (_, i) => session(i % NODES, Math.floor(i / NODES))));
    const ackedBy0 = () => [...acked.keys()].filter((k) => k.startsWith('n0-')).length;
    await waitFor(() => ackedBy0() >= 10, 'node 0 to take ten messages', 300_000);
    servers[0].child.kill('SIGKILL');
    assert.equal(await servers[0].exited, 'SIGKILL');
    await load;
    assert.deepEqual(refused, [], 'no message was refused');
    assert.ok(acked.size > NODES * SESSIONS_PER_NODE * PER_SESSION * 0.5, `${acked.size} of ${attempted} acknowledged`);

    // Every 250: its row, and its bytes (object or database) read back through another node.
    const kept = openDb(pgs.url, tmp.dir, { poolSize: 2 });
    db = kept;
    const store = new S3BlobStore(s3.storeConfig('nodes'), path.join(tmp.dir, 'staging'), { store: new DbBlobStore(kept.kysely, ''), limit: INLINE_LIMIT });
    let objects = 0;
    for (const [tag, sha] of acked) {
      const row = await kept.kysely.selectFrom('messages').select(['id', 'raw_sha256', 'size']).where('subject', '=', tag).executeTakeFirst();
      assert.ok(row, `${tag} got a 250 and has no row`);
      assert.equal(row.raw_sha256, sha, tag);
      if (row.size > INLINE_LIMIT) {
        assert.ok(await store.hasObject(sha, row.size), `${tag}: its object is in the bucket`);
        objects++;
      }
      const node = 1 + (objects % 2);
      const res = await fetch(`http://127.0.0.1:${ports[node].http}/api/v1/messages/${row.id}/raw?trace=0`, {
        headers: { authorization: 'Bearer three-nodes-token-0123456789' },
      });
      assert.equal(res.status, 200, tag);
      assert.equal(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex'), sha, `${tag} read back from node ${node}`);
    }
    assert.ok(objects > 0);
    t.diagnostic(`${acked.size} of ${attempted} acknowledged (${ackedBy0()} by the killed node), ${objects} of them objects in the bucket`);
  },
);
