import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import type { AuthVerdict } from '../../src/core/auth.js';
import { denyRealDns, dkimKey, zoneLookup } from '../helpers/dns-zone.js';
import { requirePeer, tempDir, waitFor } from '../helpers/env.js';
import { startTestPostroom, type TestPostroom } from '../helpers/postroom.js';
import { pySmtpSink } from '../helpers/py-smtp-sink.js';
import { swaks } from '../helpers/swaks.js';

/**
 * Sender authentication over SMTP, swaks as the sending MTA, all offline: DNS is a fixed zone
 * handed to Postroom, and the process's own resolvers are replaced by ones that fail and record
 * (no query may escape). Signatures are made here (node:crypto keys, mailauth's signer) and by
 * python3-dkim's dkimsign and arcsign as independent signers.
 */

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const sender = dkimKey();
const py = dkimKey();
const arcKey = dkimKey();

const ZONE: Record<string, string[]> = {
  'TXT s1._domainkey.sender.org': [sender.record],
  'TXT sender.org': ['v=spf1 ip4:127.0.0.1 -all'],
  'TXT _dmarc.sender.org': ['v=DMARC1; p=reject'],
  'TXT py._domainkey.py.example': [py.record],
  'TXT _dmarc.py.example': ['v=DMARC1; p=quarantine'],
  'TXT arc._domainkey.list.example': [arcKey.record],
  'TXT list.example': ['v=spf1 ip4:127.0.0.1 -all'],
  'TXT forged.example': ['v=spf1 -all'],
  'TXT _dmarc.forged.example': ['v=DMARC1; p=reject'],
};

function message(from: string, subject: string, extra = ''): string {
  return crlf(`From: <${from}>\nTo: <rcpt@postroom.test>\nSubject: ${subject}\nDate: Mon, 07 Dec 2026 10:00:00 +0000\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\n${extra}\nHello,\nthis is the body.\n`);
}

async function nodeSigned(from: string, subject: string): Promise<string> {
  const msg = message(from, subject);
  const s = await dkimSign(msg, { signatureData: [{ signingDomain: 'sender.org', selector: 's1', privateKey: sender.pem }] } as never);
  assert.deepEqual(s.errors, []);
  return s.signatures + msg;
}

describe('sender authentication verdicts over SMTP (swaks sender, fixed DNS zone, dkimsign/arcsign as independent signers)', () => {
  const tmp = tempDir();
  let guard: ReturnType<typeof denyRealDns>;
  let pr: TestPostroom;
  let sink: Awaited<ReturnType<typeof pySmtpSink>> | undefined;
  const zone = zoneLookup(ZONE);

  before(async () => {
    guard = denyRealDns();
    try {
      sink = await pySmtpSink(['250']);
    } catch {
      sink = undefined; // aiosmtpd missing: the forward test skips
    }
    pr = await startTestPostroom(
      {
        mail: { fetch: false },
        delivery: { pollInterval: 50 },
        auth: { enabled: true },
        routes: [
          { name: 'refuse', match: { recipient: 'refuse@postroom.test' }, authFailure: { action: 'refuse' }, deliver: [{ discard: {} }] },
          { name: 'hold', match: { recipient: 'hold@postroom.test' }, authFailure: { action: 'quarantine', require: ['dmarc', 'dkim'] }, deliver: [{ discard: {} }] },
          ...(sink
            ? [{ name: 'fwd', match: { recipient: 'fwd@postroom.test' }, deliver: [{ forward: { host: '127.0.0.1', port: sink.port, starttls: 'never' as const, helo: 'mx.postroom.test' } }] }]
            : []),
          { name: 'rest', match: { recipient: '*@postroom.test' }, deliver: [{ discard: {} }] },
        ],
      },
      { dnsLookup: zone },
    );
  });

  after(async () => {
    await pr?.close();
    await sink?.close();
    guard?.restore();
    tmp.cleanup();
  });

  let n = 0;
  async function send(from: string, to: string, raw: string) {
    const file = path.join(tmp.dir, `m${n++}.eml`);
    // --no-data-fixup sends the file as it is: the terminating dot is ours to write.
    writeFileSync(file, `${raw}.\r\n`);
    return swaks(pr.smtpPort, ['--helo', 'client.test', '--from', from, '--to', to, '--no-data-fixup', '--data', `@${file}`]);
  }

  async function verdictOf(run: { out: string; code: number }): Promise<{ id: string; auth: AuthVerdict; trace: string | null }> {
    assert.equal(run.code, 0, run.out);
    const id = /kept as (\S+)/.exec(run.out)?.[1];
    assert.ok(id, run.out);
    const res = await pr.api(`/api/v1/messages/${id}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { auth: AuthVerdict; trace: string | null };
    return { id, auth: body.auth, trace: body.trace };
  }

  it('a message signed here (node:crypto key) from an SPF-listed client: spf, dkim and dmarc pass, shown in the API and our header', async () => {
    const { auth, trace } = await verdictOf(await send('bounce@sender.org', 'rcpt@postroom.test', await nodeSigned('alice@sender.org', 'signed here')));
    assert.equal(auth.source, 'smtp');
    assert.equal(auth.authservId, 'mx.postroom.test');
    assert.deepEqual(auth.spf, { result: 'pass', domain: 'sender.org' });
    assert.equal(auth.dkim.length, 1);
    assert.deepEqual([auth.dkim[0].domain, auth.dkim[0].selector, auth.dkim[0].result], ['sender.org', 's1', 'pass']);
    assert.deepEqual(auth.dmarc, { result: 'pass', domain: 'sender.org', policy: 'reject', alignment: { spf: true, dkim: true } });
    assert.equal(auth.arc?.result, 'none');
    assert.match(trace ?? '', /^Authentication-Results: mx\.postroom\.test;\r\n spf=pass smtp\.mailfrom=sender\.org;\r\n dkim=pass header\.d=sender\.org header\.s=s1;/);
  });

  it("a message signed by python3-dkim's dkimsign: dkim pass for its domain, dmarc pass through DKIM alignment", async (t) => {
    if (!requirePeer(t, 'dkimsign')) return;
    const keyFile = path.join(tmp.dir, 'py.pem');
    writeFileSync(keyFile, py.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const signed = execFileSync('dkimsign', ['py', 'py.example', keyFile], { input: message('bob@py.example', 'dkimpy signed') }).toString('latin1');
    assert.match(signed, /^DKIM-Signature:/);
    const { auth } = await verdictOf(await send('bob@py.example', 'rcpt@postroom.test', signed));
    assert.deepEqual(
      auth.dkim.map((d) => [d.domain, d.selector, d.result]),
      [['py.example', 'py', 'pass']],
    );
    // No SPF record for py.example: none; DMARC passes on the aligned signature alone.
    assert.equal(auth.spf?.result, 'none');
    assert.equal(auth.dmarc?.result, 'pass');
    assert.equal(auth.dmarc?.policy, 'quarantine');
  });

  it('a forward that changed the body: DKIM no longer verifies, arc none without an ARC set, arc pass with the intermediary\'s ARC set (arcsign)', async (t) => {
    if (!requirePeer(t, 'dkimsign')) return;
    const original = await nodeSigned('carol@sender.org', 'via the list');
    // The list adds a footer (the body hash no longer matches) and its own verdict.
    const changed = crlf(
      `Authentication-Results: list.example; dkim=pass header.d=sender.org; spf=pass smtp.mailfrom=sender.org; dmarc=pass header.from=sender.org\n`,
    ) + original + crlf('-- \nlist footer\n');
    const plain = await verdictOf(await send('bounce@list.example', 'rcpt@postroom.test', changed));
    // mailauth words a body hash mismatch `neutral` ("body hash did not verify"), not `fail`.
    assert.deepEqual(plain.auth.dkim.map((d) => [d.domain, d.result]), [['sender.org', 'neutral']]);
    assert.match(plain.auth.dkim[0].reason ?? '', /body hash/);
    assert.equal(plain.auth.arc?.result, 'none');
    assert.equal(plain.auth.dmarc?.result, 'fail');
    assert.equal(plain.auth.spf?.result, 'pass');

    const keyFile = path.join(tmp.dir, 'arc.pem');
    writeFileSync(keyFile, arcKey.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const sealed = execFileSync('arcsign', ['arc', 'list.example', keyFile, 'list.example'], { input: changed }).toString('latin1');
    assert.match(sealed, /^ARC-Seal:/im);
    const arced = await verdictOf(await send('bounce@list.example', 'rcpt@postroom.test', sealed));
    assert.deepEqual(arced.auth.dkim.map((d) => [d.domain, d.result]), [['sender.org', 'neutral']]);
    assert.equal(arced.auth.arc?.result, 'pass');
    assert.equal(arced.auth.arc?.instance, 1);
    // DMARC itself still fails (RFC 8617 §7.2 leaves the override to local policy).
    assert.equal(arced.auth.dmarc?.result, 'fail');
  });

  it('a route with authFailure refuse answers 550 5.7.26 at the end of DATA for a DMARC failure, and keeps nothing', async () => {
    const before = await pr.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    const run = await send('mallory@forged.example', 'refuse@postroom.test', message('ceo@forged.example', 'forged'));
    assert.notEqual(run.code, 0);
    assert.ok(run.replies.some((l) => /^550 5\.7\.26 /.test(l)), run.out);
    assert.ok(run.replies.some((l) => /forged\.example publishes DMARC p=reject/.test(l)), run.out);
    const after = await pr.db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    assert.equal(Number(after.n), Number(before.n));
  });

  it('a route with authFailure quarantine keeps the message with its delivery held; a retry releases it', async () => {
    const { id, auth } = await verdictOf(await send('mallory@forged.example', 'hold@postroom.test', message('ceo@forged.example', 'held')));
    assert.equal(auth.dmarc?.result, 'fail');
    const d = await waitFor(
      () => pr.db.kysely.selectFrom('deliveries').selectAll().where('message', '=', id).executeTakeFirst(),
      'the held delivery',
    );
    assert.equal(d.status, 'held');
    assert.match(d.last_error ?? '', /quarantined by route hold: 5\.7\.26/);
    const msg = await (await pr.api(`/api/v1/messages/${id}`)).json();
    assert.equal((msg as { status: string }).status, 'held');
    const released = await pr.api(`/api/v1/deliveries/${d.id}/retry`, { method: 'POST' });
    assert.equal(released.status, 200);
    const done = await waitFor(async () => {
      const r = await pr.db.kysely.selectFrom('deliveries').select('status').where('id', '=', d.id).executeTakeFirst();
      return r?.status === 'done' ? r : undefined;
    }, 'the released delivery to be done');
    assert.equal(done.status, 'done');
  });

  it('a forward carries our Authentication-Results on top and renames an inbound one that claims our host name', async (t) => {
    if (!requirePeer(t, 'aiosmtpd') || !sink) return;
    const forged = crlf('Authentication-Results: mx.postroom.test; dmarc=pass header.from=forged.example\n');
    await verdictOf(await send('mallory@forged.example', 'fwd@postroom.test', forged + message('ceo@forged.example', 'forward me')));
    const [got] = await waitFor(() => (sink!.messages().length ? sink!.messages() : undefined), 'the forwarded copy', 20_000);
    const head = got.raw.toString('latin1').split('\r\n\r\n')[0];
    const lines = head.split('\r\n');
    assert.equal(lines[0], 'Authentication-Results: mx.postroom.test;');
    assert.match(head, /^ dmarc=fail \(p=reject\) header\.from=forged\.example$/m);
    assert.match(head, /^X-Original-Authentication-Results: mx\.postroom\.test; dmarc=pass header\.from=forged\.example$/m);
    // Exactly one field speaks for our host: ours.
    assert.equal(lines.filter((l) => /^Authentication-Results:\s*mx\.postroom\.test/i.test(l)).length, 1);
  });

  it('no DNS query left the process: every answer came from the fixed zone', () => {
    assert.deepEqual(guard.escaped(), []);
    assert.ok(zone.asked.includes('TXT _dmarc.sender.org'), zone.asked.join(', '));
  });
});

describe('a name server that never answers (swaks sender)', () => {
  it('the 250 still comes (bounded by auth.dnsTimeout) and every method is kept as temperror', async (t) => {
    if (!requirePeer(t, 'swaks')) return;
    const guard = denyRealDns();
    const tmp = tempDir();
    const pr = await startTestPostroom({ mail: { fetch: false }, auth: { enabled: true, dnsTimeout: '500ms' } }, { dnsLookup: () => new Promise(() => {}) });
    t.after(async () => {
      await pr.close();
      guard.restore();
      tmp.cleanup();
    });
    const file = path.join(tmp.dir, 'slow.eml');
    writeFileSync(file, `${await nodeSigned('dave@sender.org', 'slow dns')}.\r\n`);
    const run = await swaks(pr.smtpPort, ['--from', 'dave@sender.org', '--to', 'rcpt@postroom.test', '--no-data-fixup', '--data', `@${file}`]);
    assert.equal(run.code, 0, run.out);
    assert.ok(run.replies.some((l) => /^250 2\.0\.0 Ok: kept as /.test(l)), run.out);
    const row = await pr.db.kysely.selectFrom('messages').select('auth').executeTakeFirstOrThrow();
    const auth = JSON.parse(row.auth ?? 'null') as AuthVerdict;
    assert.equal(auth.spf?.result, 'temperror');
    assert.equal(auth.dmarc?.result, 'temperror');
    assert.equal(auth.arc?.result, 'temperror');
    assert.match(auth.reason ?? '', /DNS did not answer within 500 ms/);
    assert.deepEqual(guard.escaped(), []);
  });
});
