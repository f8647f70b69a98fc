import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Migrator, type Migration } from 'kysely';
import nodemailer from 'nodemailer';
import { newId } from '../../src/core/ids.js';
import { migrate, openDb, schemaScoped } from '../../src/store/db.js';
import { migrations } from '../../src/store/migrations/index.js';
import { getMessage, newMessageRow } from '../../src/store/messages.js';
import { tempDir, testBackend, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pgTestSchema } from '../helpers/test-db.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/mime');
// The built binary (scripts/run-tests.mjs builds dist/ first).
const BIN = path.resolve(import.meta.dirname, '../../bin/postroom.js');

/**
 * The parse outcome (pending, parsed, raw with its reason) and the way through delivery are two
 * things: delivering a message that could not be parsed must not hide that it could not be.
 */
describe(`parse status apart from delivery status (${testBackend()})`, () => {
  let pr: TestPostroom;
  let hook: http.Server;
  const hits: string[] = [];

  before(async () => {
    hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hits.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/in`;
    pr = await startTestPostroom({
      delivery: { pollInterval: '50ms' },
      routes: [{ name: 'hooks', match: { recipient: 'hook@postroom.test' }, deliver: [{ webhook: { url, allowPrivate: true } }] }],
    });
  });
  after(async () => {
    await pr?.close();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  async function send(raw: Buffer): Promise<void> {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: pr.smtpPort, secure: false, ignoreTLS: true });
    try {
      await t.sendMail({ envelope: { from: 'alice@example.org', to: ['hook@postroom.test'] }, raw });
    } finally {
      t.close();
    }
  }
  const get = async (q: string) => {
    const res = await pr.api(`/api/v1/messages${q}`);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { items: { id: string; status: string; parseStatus: string; subject: string }[] };
  };

  test('a message nested past the MIME limit is delivered and still found by status=raw and parse=raw', async () => {
    await send(readFileSync(path.join(FIXTURES, 'deep-nesting-over.eml')));
    const m = await waitFor(async () => (await get('?subject=40%20levels')).items.find((x) => x.status === 'delivered'), 'the raw message to be delivered', 60_000);
    assert.equal(hits.length, 1, 'the webhook got it');
    assert.equal(m.parseStatus, 'raw');
    for (const q of ['?status=raw', '?parse=raw', '?parse=raw&status=delivered']) {
      assert.deepEqual((await get(q)).items.map((x) => x.id), [m.id], q);
    }
    assert.deepEqual((await get('?parse=parsed&subject=40%20levels')).items, []);
    const detail = (await (await pr.api(`/api/v1/messages/${m.id}`)).json()) as Record<string, unknown>;
    assert.equal(detail.status, 'delivered');
    assert.equal(detail.parseStatus, 'raw');
    assert.match(String(detail.parseError), /nesting deeper than 20/);
    assert.equal(detail.error, null, 'no routing or delivery error');
    const metrics = await (await pr.api('/metrics')).text();
    assert.match(metrics, /postroom_raw_messages\{status="delivered"\} 1\b/);
  });

  test('a parsed message reads parsed, delivered; status=raw does not list it', async () => {
    await send(readFileSync(path.join(FIXTURES, 'nested-multipart.eml')));
    const m = await waitFor(async () => (await get('?parse=parsed')).items.find((x) => x.status === 'delivered'), 'the parsed message to be delivered', 60_000);
    assert.ok(!(await get('?status=raw')).items.some((x) => x.id === m.id));
  });

  /** Run the built `postroom messages …` against this Postroom's store; exit code, stdout, stderr. */
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const file = path.join(pr.dir, 'cli.json');
    writeFileSync(file, JSON.stringify({ dataDir: pr.config.dataDir, store: { database: pr.config.store.database } }));
    const child = spawn(process.execPath, [BIN, 'messages', ...args, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    return { code, out, err };
  }

  test('postroom messages list --status raw / --parse raw finds the delivered raw message; bad values exit 64', async () => {
    const [raw] = (await get('?parse=raw')).items;
    assert.ok(raw, 'the raw message of the first test');
    for (const args of [['--status', 'raw'], ['--parse', 'raw', '--status', 'delivered']]) {
      const r = await cli('list', ...args, '--json');
      assert.equal(r.code, 0, r.err);
      const rows = JSON.parse(r.out) as { id: string; status: string; parseStatus: string; parseError: string }[];
      assert.deepEqual(rows.map((x) => [x.id, x.status, x.parseStatus]), [[raw.id, 'delivered', 'raw']], args.join(' '));
      assert.match(rows[0].parseError, /nesting deeper than 20/);
    }
    const table = await cli('list', '--parse', 'raw');
    assert.match(table.out, new RegExp(`^${raw.id}\tdelivered\traw +\tsmtp\t`, 'm'));
    const bad = await cli('list', '--parse', 'maybe');
    assert.equal(bad.code, 64);
    assert.match(bad.err, /--parse must be pending, parsed or raw/);
    assert.equal((await cli('list', '--bogus')).code, 64);
  });

  test('an unknown parse filter answers 400 naming the allowed values', async () => {
    const res = await pr.api('/api/v1/messages?parse=broken');
    assert.equal(res.status, 400);
    assert.match(await res.text(), /pending.*parsed.*raw/);
  });
});

describe(`migration 0008 derives the parse status of kept rows (${testBackend()})`, () => {
  test('raw (still raw, since delivered, since failed), parsed and unparsed rows', async () => {
    const tmp = tempDir();
    const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
    const db = openDb(pgs?.url ?? path.join(tmp.dir, 'postroom.db'), tmp.dir);
    try {
      const upTo0007: Record<string, Migration> = Object.fromEntries(Object.entries(migrations).filter(([k]) => k < '0008'));
      const migrator = new Migrator({
        // Introspection limited to the test's schema, as the store's own migrator does: other
        // tests create and drop schemas meanwhile, and a schema gone between listing and
        // reading failed this test once.
        db: db.pg?.schema ? schemaScoped(db.kysely, db.pg.schema) : db.kysely,
        provider: { getMigrations: async () => upTo0007 },
        ...(db.pg?.schema ? { migrationTableSchema: db.pg.schema } : {}),
      });
      const { error } = await migrator.migrateToLatest();
      assert.ifError(error);
      // Rows as the code before this migration wrote them.
      const rows = {
        raw: { status: 'raw', error: 'MIME nesting deeper than 20', parsed: true, rawPart: true },
        rawDelivered: { status: 'delivered', error: 'MIME nesting deeper than 20', parsed: true, rawPart: true },
        rawFailed: { status: 'failed', error: 'a delivery is dead: 550 no', parsed: true, rawPart: true },
        parsedDelivered: { status: 'delivered', error: null, parsed: true, rawPart: false },
        unparsed: { status: 'received', error: null, parsed: false, rawPart: false },
      };
      const ids: Record<string, string> = {};
      for (const [name, r] of Object.entries(rows)) {
        const id = newId();
        ids[name] = id;
        const row = newMessageRow(id, { mailFrom: 'a@x.test', rcptTo: [`${name}@y.test`], ingress: 'smtp', receivedAt: new Date() }, { sha256: 'a'.repeat(64), size: 10 }, { messageId: null, subject: name, from: null, date: null }, null);
        // Without the columns later migrations add (0008 and on).
        const { parse_status: _p, parse_error: _e, handoff: _h, content_sha256: _c, duplicate_of: _d, defects: _f, auth: _a, ...old } = row;
        await db.kysely.insertInto('messages').values({ ...old, status: r.status, error: r.error, parsed_at: r.parsed ? new Date().toISOString() : null } as never).execute();
        if (r.parsed) {
          await db.kysely.insertInto('parts').values({ id: newId(), message: id, idx: 0, kind: r.rawPart ? 'raw' : 'text', filename: null, original_filename: null, content_type: r.rawPart ? 'message/rfc822' : 'text/plain', content_id: null, size: 10, sha256: 'a'.repeat(64) }).execute();
        }
      }
      await migrate(db);
      const after = async (name: string) => {
        const m = (await getMessage(db.kysely, ids[name]))!;
        return [m.status, m.error, m.parseStatus, m.parseError];
      };
      assert.deepEqual(await after('raw'), ['received', null, 'raw', 'MIME nesting deeper than 20']);
      assert.deepEqual(await after('rawDelivered'), ['delivered', null, 'raw', 'MIME nesting deeper than 20']);
      assert.deepEqual(await after('rawFailed'), ['failed', 'a delivery is dead: 550 no', 'raw', null]);
      assert.deepEqual(await after('parsedDelivered'), ['delivered', null, 'parsed', null]);
      assert.deepEqual(await after('unparsed'), ['received', null, 'pending', null]);
    } finally {
      await db.close();
      await pgs?.drop();
      tmp.cleanup();
    }
  });
});
