import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDb, type Db } from '../../src/store/db.js';
import { openBlobStore } from '../../src/store/open-blobs.js';
import { BIN } from '../helpers/deliver.js';
import { DEBIAN_PYTHON, skipWithout, tempDir, testBackend, waitFor } from '../helpers/env.js';
import { cleanEnv } from '../helpers/serve-child.js';
import { pgTestSchema } from '../helpers/test-db.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A store of its own for one case (SQLite file or a PostgreSQL schema), and the CLI run against it. */
interface Store {
  env: Record<string, string>;
  url: string;
  dir: string;
  cli(args: string[], input?: Buffer): Promise<Run>;
  spawn(args: string[]): ReturnType<typeof spawn>;
  /** Each kept message: row and raw bytes (without our trace header), oldest first. */
  messages(): Promise<{ id: string; status: string; mailFrom: string; rcptTo: string[]; raw: Buffer; trace: string | null; flags: string[] }[]>;
  count(): Promise<number>;
  db(): Db;
  cleanup(): Promise<void>;
}

const tmp = tempDir('import-export-');
const stores: Store[] = [];

async function newStore(): Promise<Store> {
  const dir = path.join(tmp.dir, `store-${stores.length}`);
  mkdirSync(dir);
  const pgs = testBackend() === 'postgres' ? await pgTestSchema() : undefined;
  const url = pgs?.url ?? path.join(dir, 'postroom.db');
  const config = path.join(dir, 'postroom.yaml');
  writeFileSync(config, 'smtp:\n  hostname: import.test\n');
  const env = { POSTROOM_DATA_DIR: dir, POSTROOM_CONFIG: config, ...(pgs ? { POSTROOM_DATABASE_URL: pgs.url } : {}) };
  let db: Db | undefined;
  const getDb = () => (db ??= openDb(url, dir, { poolSize: 1 }));
  const spawnCli = (args: string[]) => spawn(process.execPath, [BIN, ...args], { cwd: dir, env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  const st: Store = {
    env,
    url,
    dir,
    spawn: spawnCli,
    cli(args, input) {
      const child = spawnCli(args);
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdin!.on('error', () => {});
      child.stdin!.end(input ?? '');
      return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
    },
    async messages() {
      const d = getDb();
      const blobs = openBlobStore({ dataDir: dir, store: {} }, d);
      const rows = await d.kysely.selectFrom('messages').selectAll().orderBy('id').execute();
      const flags = await d.kysely.selectFrom('message_flags').selectAll().execute();
      const out = [];
      for (const r of rows) {
        const chunks: Buffer[] = [];
        for await (const c of await blobs.open(r.raw_sha256)) chunks.push(c as Buffer);
        const f = flags.find((x) => x.message === r.id);
        out.push({
          id: r.id,
          status: r.status,
          mailFrom: r.mail_from,
          rcptTo: JSON.parse(r.rcpt_to) as string[],
          raw: Buffer.concat(chunks),
          trace: r.trace,
          flags: f ? (JSON.parse(f.flags) as string[]) : [],
        });
      }
      return out;
    },
    async count() {
      const r = await getDb().kysely.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
      return Number(r.n);
    },
    db: getDb,
    async cleanup() {
      await db?.close();
      await pgs?.drop();
    },
  };
  stores.push(st);
  return st;
}

function python(script: string, ...args: string[]): string {
  return execFileSync(DEBIAN_PYTHON, ['-c', script, ...args], { encoding: 'utf8' });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Messages to write with Python's mailbox: From lines in bodies, CRLF, no Message-ID, a recipient only in To:. */
function sampleMessages(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 12; i++) {
    const eol = i % 3 === 2 ? '\r\n' : '\n';
    const head = [
      `Return-Path: <sender${i}@example.org>`,
      i % 4 === 3 ? `To: Someone <to${i}@example.net>` : `X-Original-To: rcpt${i}@example.net`,
      ...(i % 5 === 4 ? [] : [`Message-ID: <m${i}@example.org>`]),
      `Subject: message ${i}`,
    ];
    const body = [`hello ${i}`, 'From the start of a line', 'quoted text', 'From: not a header', ''];
    out.push(Buffer.from(`${head.join(eol)}${eol}${eol}${body.join(eol)}`));
  }
  return out;
}

const PY_WRITE_MBOX = String.raw`
import mailbox, sys, json
mb = mailbox.mbox(sys.argv[1])
mb.lock()
for path in json.loads(sys.argv[2]):
    mb.add(open(path, 'rb').read())
mb.flush(); mb.unlock()
`;

/** Python reads our mboxrd: its own mbox parser finds the messages, the mboxrd unquoting is applied to each. */
const PY_READ_MBOXRD = String.raw`
import mailbox, sys, re, hashlib, json
mb = mailbox.mbox(sys.argv[1], create=False)
out = []
for key in mb.keys():
    data = mb.get_bytes(key)
    data = re.sub(rb'(?m)^>(>*From )', rb'\1', data)
    out.append({'sha256': hashlib.sha256(data).hexdigest(), 'from': mb.get_message(key).get_from()})
print(json.dumps(out))
`;

const PY_WRITE_MAILDIR = String.raw`
import mailbox, sys, json
md = mailbox.Maildir(sys.argv[1], create=True)
for path, flags, subdir in json.loads(sys.argv[2]):
    m = mailbox.MaildirMessage(open(path, 'rb').read())
    m.set_subdir(subdir)
    m.set_flags(flags)
    md.add(m)
`;

describe('postroom import / export with Python mailbox as the peer', { skip: skipWithout('import/export', 'python3') }, () => {
  const samples = sampleMessages();
  const sampleFiles: string[] = [];
  before(() => {
    samples.forEach((m, i) => {
      const f = path.join(tmp.dir, `sample-${i}.eml`);
      writeFileSync(f, m);
      sampleFiles.push(f);
    });
  });
  after(async () => {
    for (const s of stores) await s.cleanup();
    tmp.cleanup();
  });

  it('python-mailbox mbox: every message kept byte for byte with its envelope; a second run keeps nothing twice', async () => {
    const st = await newStore();
    const mbox = path.join(tmp.dir, 'python.mbox');
    python(PY_WRITE_MBOX, mbox, JSON.stringify(sampleFiles));
    // Python quotes the body's From lines (mangle_from_): our reader takes the quote off again.
    assert.match(readFileSync(mbox, 'latin1'), /^>From the start of a line/m);
    const first = await st.cli(['import', 'mbox', mbox]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /kept 12, already kept 0, refused 0/);
    const kept = await st.messages();
    assert.deepEqual(
      kept.map((m) => sha(m.raw)),
      samples.map(sha),
    );
    assert.deepEqual(kept[0].rcptTo, ['rcpt0@example.net']);
    assert.deepEqual(kept[3].rcptTo, ['to3@example.net']);
    assert.equal(kept[1].mailFrom, 'sender1@example.org');
    assert.ok(kept.every((m) => m.status === 'received'));
    const again = await st.cli(['import', 'mbox', mbox]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /kept 0, already kept 12, refused 0/);
    assert.equal(await st.count(), 12);
  });

  it('python-mailbox Maildir: flags kept as IMAP flags, --no-route keeps without routing, links and dot files not followed', async () => {
    const st = await newStore();
    const md = path.join(tmp.dir, 'Maildir');
    python(
      PY_WRITE_MAILDIR,
      md,
      JSON.stringify([
        [sampleFiles[0], 'FRS', 'cur'],
        [sampleFiles[1], 'S', 'cur'],
        [sampleFiles[2], '', 'new'],
      ]),
    );
    // Hostile entries: a link out of the Maildir, a dot file, a name full of shell characters.
    const secret = path.join(tmp.dir, 'secret.txt');
    writeFileSync(secret, 'X-Original-To: thief@example.net\n\nthe host secret\n');
    symlinkSync(secret, path.join(md, 'cur', 'link:2,S'));
    writeFileSync(path.join(md, 'cur', '.hidden:2,S'), 'X-Original-To: h@example.net\n\nhidden\n');
    writeFileSync(path.join(md, 'cur', '$(touch pwned);`id`\n:2,T'), 'X-Original-To: odd@example.net\n\nodd name\n');
    const r = await st.cli(['import', 'maildir', '--no-route', md]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kept 4,/);
    const kept = await st.messages();
    const bySubject = (s: string) => kept.find((m) => m.raw.toString('latin1').includes(s))!;
    assert.deepEqual(bySubject('message 0').flags.sort(), ['\\Answered', '\\Flagged', '\\Seen']);
    assert.deepEqual(bySubject('message 1').flags, ['\\Seen']);
    assert.deepEqual(bySubject('message 2').flags, []);
    assert.deepEqual(bySubject('odd name').flags, ['\\Deleted']);
    assert.ok(!kept.some((m) => m.raw.includes('the host secret') || m.raw.includes('hidden')));
    assert.ok(kept.every((m) => m.status === 'kept'));
    assert.ok(!existsSync(path.join(st.dir, 'pwned')));
  });

  it('eml: a directory, files and standard input; refusals exit 65 with the reason, others are kept', async () => {
    const st = await newStore();
    const dir = path.join(tmp.dir, 'emls');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.eml'), samples[0]);
    writeFileSync(path.join(dir, 'b.eml'), samples[1]);
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'c.eml'), samples[2]);
    symlinkSync(sampleFiles[3], path.join(dir, 'd.eml'));
    const r = await st.cli(['import', 'eml', dir, sampleFiles[4]]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kept 3,/);
    const stdin = await st.cli(['import', 'eml', '--to', 'given@example.net', '--from', 'me@example.org', '-'], samples[5]);
    assert.equal(stdin.code, 0, stdin.stderr);
    const last = (await st.messages()).at(-1)!;
    assert.deepEqual([last.mailFrom, last.rcptTo, sha(last.raw)], ['me@example.org', ['given@example.net'], sha(samples[5])]);
    const nobody = path.join(tmp.dir, 'nobody.eml');
    writeFileSync(nobody, 'Subject: no recipient anywhere\n\nhi\n');
    const refused = await st.cli(['import', 'eml', nobody, sampleFiles[6]]);
    assert.equal(refused.code, 65);
    assert.match(refused.stderr, /nobody\.eml: 5\.1\.3 /);
    assert.match(refused.stdout, /kept 1, already kept 0, refused 1/);
  });

  it('bad input and an unavailable store: 65 not an mbox, 66 no such file, 64 usage, 75 store down', async () => {
    const st = await newStore();
    const notMbox = path.join(tmp.dir, 'not.mbox');
    writeFileSync(notMbox, 'Subject: hi\n\nno From_ line\n');
    const bad = await st.cli(['import', 'mbox', notMbox]);
    assert.equal(bad.code, 65, bad.stderr);
    assert.match(bad.stderr, /5\.6\.0 Not an mbox/);
    const missing = await st.cli(['import', 'mbox', path.join(tmp.dir, 'nope.mbox')]);
    assert.equal(missing.code, 66, missing.stderr);
    assert.equal((await st.cli(['import', 'maildir', path.join(tmp.dir, 'nope')])).code, 66);
    assert.equal((await st.cli(['import', 'tarball', notMbox])).code, 64);
    assert.equal((await st.cli(['import', 'mbox', '--format', 'mmdf', notMbox])).code, 64);
    assert.equal((await st.cli(['export', '--format', 'mbox', '--out', 'x', '--status', 'lost'])).code, 64);
    const down = spawn(process.execPath, [BIN, 'import', 'eml', sampleFiles[0]], {
      env: cleanEnv({ ...st.env, POSTROOM_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    down.stderr!.on('data', (d) => (err += d));
    const code = await new Promise((r) => down.on('close', r));
    assert.equal(code, 75, err);
    assert.match(err, /^postroom import: 4\.\d\.\d /m);
  });

  it('export mbox: Python reads every message back byte for byte; imported into a fresh store, the raw messages are identical', async () => {
    const a = await newStore();
    assert.equal((await a.cli(['import', 'eml', ...sampleFiles])).code, 0);
    const kept = await a.messages();
    const out = path.join(tmp.dir, 'export.mbox');
    const ex = await a.cli(['export', '--format', 'mbox', '--no-trace', '--out', out]);
    assert.equal(ex.code, 0, ex.stderr);
    const py = JSON.parse(python(PY_READ_MBOXRD, out)) as { sha256: string; from: string }[];
    assert.deepEqual(
      py.map((m) => m.sha256),
      kept.map((m) => sha(m.raw)),
    );
    assert.match(py[0].from, /^sender0@example\.org /);
    const b = await newStore();
    const imp = await b.cli(['import', 'mbox', out]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.deepEqual(
      (await b.messages()).map((m) => sha(m.raw)),
      kept.map((m) => sha(m.raw)),
    );
    // With the trace header (the default), each exported message is our Received: line, then the bytes received.
    const traced = path.join(tmp.dir, 'traced.mbox');
    assert.equal((await a.cli(['export', '--format', 'mbox', '--out', traced, '--rcpt', 'rcpt0@'])).code, 0);
    const c = await newStore();
    assert.equal((await c.cli(['import', 'mbox', '--no-trace', traced])).code, 0);
    const [one] = await c.messages();
    assert.equal(one.raw.toString('latin1'), kept[0].trace!.replace(/\r\n/g, kept[0].raw.includes('\r\n') ? '\r\n' : '\n') + kept[0].raw.toString('latin1'));
  });

  it('export eml: one file per message named by its id, whatever the message says', async () => {
    const st = await newStore();
    const evil = Buffer.from('X-Original-To: a@example.net\nMessage-ID: <../../../../tmp/evil@x>\nSubject: ../../escape\n\nbody\n');
    assert.equal((await st.cli(['import', 'eml', '-'], evil)).code, 0);
    const out = path.join(tmp.dir, 'eml-out');
    const r = await st.cli(['export', '--format', 'eml', '--no-trace', '--out', out, '--q', 'subject:escape']);
    assert.equal(r.code, 0, r.stderr);
    const [m] = await st.messages();
    assert.deepEqual(readdirSync(out), [`${m.id}.eml`]);
    assert.deepEqual(readFileSync(path.join(out, `${m.id}.eml`)), evil);
  });

  it('Ctrl-C: the messages in flight are kept, the place saved, exit 75; a rerun keeps the rest exactly once', { timeout: 600_000 }, async () => {
    const st = await newStore();
    const total = 6000;
    const mbox = path.join(tmp.dir, 'ctrl-c.mbox');
    let text = '';
    for (let i = 0; i < total; i++) text += `From s@example.org Thu Jan  1 00:00:00 1970\nX-Original-To: r@example.net\nMessage-ID: <int${i}@example.org>\n\n${'y'.repeat(300)}\n\n`;
    writeFileSync(mbox, text);
    const child = st.spawn(['import', 'mbox', mbox]);
    child.stdin!.end();
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const kept = async () => {
      try {
        return await st.count();
      } catch {
        return 0; // not migrated yet
      }
    };
    await waitFor(async () => (await kept()) > 0, 'the first messages kept', 300_000);
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 75, out);
    assert.match(out, /interrupted: run it again to continue/);
    const first = await st.count();
    const rerun = await st.cli(['import', 'mbox', mbox]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const m = /kept (\d+), already kept (\d+), refused 0/.exec(rerun.stdout)!;
    assert.equal(Number(m[1]), total - first, rerun.stdout);
    assert.equal(await st.count(), total);
  });

  it('resume: killed with SIGKILL mid-import, a rerun continues from the saved place and keeps every message exactly once', { timeout: 600_000 }, async () => {
    const st = await newStore();
    const total = 20_000;
    const mbox = path.join(tmp.dir, 'big.mbox');
    const parts: string[] = [];
    for (let i = 0; i < total; i++) {
      parts.push(`From s@example.org Thu Jan  1 00:00:00 1970\nX-Original-To: r@example.net\nMessage-ID: <big${i}@example.org>\nSubject: big ${i}\n\n${'x'.repeat(400)}\nFrom line ${i}\n\n`);
    }
    writeFileSync(mbox, parts.join('').replace(/\nFrom line/g, '\n>From line'));
    const child = st.spawn(['import', 'mbox', mbox]);
    child.stdin!.end();
    const exited = new Promise<number | null>((r) => child.on('close', (code, signal) => r(signal ? -1 : code)));
    // Killed once it has saved its place (every 2 s) and before it is done.
    const place = async () => {
      try {
        return await st.db().kysely.selectFrom('import_progress').selectAll().executeTakeFirst();
      } catch {
        return undefined; // not migrated yet
      }
    };
    const saved = await waitFor(
      async () => (await place()) ?? ((await Promise.race([exited, new Promise((r) => setTimeout(r, 50, 'running'))])) !== 'running' ? 'done' : undefined),
      'a saved place',
      300_000,
    );
    assert.notEqual(saved, 'done', 'the import finished before a place was saved: make the file larger');
    child.kill('SIGKILL');
    assert.equal(await exited, -1);
    const before = await st.count();
    assert.ok(before < total, `killed after all ${before} were kept`);
    const rerun = await st.cli(['import', 'mbox', mbox]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const m = /kept (\d+), already kept (\d+), refused 0/.exec(rerun.stdout);
    assert.ok(m, rerun.stdout);
    // It did not start at byte 0: fewer messages read than the file holds.
    assert.ok(Number(m[1]) + Number(m[2]) < total, rerun.stdout);
    assert.equal(await st.count(), total);
    const ids = await st.db().kysely.selectFrom('messages').select('message_id').distinct().execute();
    assert.equal(ids.length, total);
    // A finished import forgets its place: the next run reads the whole file and keeps nothing.
    assert.equal((await st.db().kysely.selectFrom('import_progress').selectAll().execute()).length, 0);
    const third = await st.cli(['import', 'mbox', mbox]);
    assert.match(third.stdout, new RegExp(`kept 0, already kept ${total}, refused 0`));
  });
});
