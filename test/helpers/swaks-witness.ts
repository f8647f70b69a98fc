import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { swaks } from './swaks.js';

/**
 * One numbered message sent by swaks, and what the server answered to the end of DATA: the
 * witness of the chaos tests. `accepted`: a 250 naming the kept id; `refused`: the first 4xx/5xx
 * reply; neither: no answer within swaks's timeout, or the connection dropped.
 */
export interface Sent {
  n: number;
  messageId: string;
  /** sha256 of the exact bytes sent, which the server must keep (its `sha256` field). */
  sha256: string;
  /** How many bytes were sent. */
  size: number;
  accepted?: string;
  refused?: string;
  /** swaks's transcript, for the assertion messages. */
  out: string;
}

/**
 * Send message `n` of run `tag` to 127.0.0.1:port with swaks and say what came back. The file
 * ends with the `.` line, so swaks sends it byte for byte (no CRLF or terminator of its own) and
 * has no `%TOKEN%` for swaks to substitute; base64 lines hold no `.` to stuff. `size`: body bytes.
 */
export async function sendNumbered(port: number, dir: string, tag: string, n: number, size = 1024, timeoutSec = 30): Promise<Sent> {
  const messageId = `<chaos-${tag}-${n}@client.test>`;
  const line = `${createHash('sha256').update(`${tag}-${n}`).digest('base64').replace(/[^A-Za-z0-9]/g, 'x').repeat(2).slice(0, 76)}\r\n`;
  const raw = Buffer.from(
    `From: chaos@client.test\r\nTo: rcpt@postroom.test\r\nSubject: chaos ${tag} ${n}\r\nMessage-ID: ${messageId}\r\n\r\n${line.repeat(Math.ceil(size / line.length))}`,
  );
  const file = path.join(dir, `${tag}-${n}.eml`);
  writeFileSync(file, Buffer.concat([raw, Buffer.from('.\r\n')]));
  const run = await swaks(port, ['--timeout', String(timeoutSec), '--from', 'chaos@client.test', '--to', 'rcpt@postroom.test', '--data', `@${file}`], (timeoutSec + 30) * 1000);
  const accepted = run.replies.map((r) => /^250 .*kept as (\S+)/.exec(r)?.[1]).find(Boolean);
  const refused = run.replies.find((r) => /^[45]\d\d[ -]/.test(r));
  return { n, messageId, sha256: createHash('sha256').update(raw).digest('hex'), size: raw.length, accepted, refused, out: run.out };
}

/**
 * Numbered messages of one run sent by swaks, with each one's latest outcome (a message sent
 * again, as an MTA retries after a 451, counts by its retry). `size(n)`: its body bytes.
 */
export function witness(port: number, dir: string, tag: string, size: (n: number) => number) {
  const latest = new Map<number, Sent>();
  let next = 0;
  return {
    /** Send message `n` (default: a new one). */
    async send(n = next++): Promise<Sent> {
      const s = await sendNumbered(port, dir, tag, n, size(n));
      latest.set(n, s);
      return s;
    },
    all: () => [...latest.values()],
  };
}

/** One message's outcome and the end of swaks's transcript, for an assertion's message. */
export function showSent(s: Sent): string {
  return `message ${s.n}: ${s.accepted ? `250 ${s.accepted}` : (s.refused ?? 'no answer')}\n${s.out.slice(-1500)}`;
}

/** Every kept message, by Message-ID, as the HTTP API lists them (all pages). */
export async function keptByMessageId(httpPort: number, token: string): Promise<Map<string, { id: string; sha256: string }[]>> {
  const kept = new Map<string, { id: string; sha256: string }[]>();
  let cursor: string | undefined;
  do {
    const url = `http://127.0.0.1:${httpPort}/api/v1/messages?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { items: { id: string; messageId: string | null; sha256: string }[]; nextCursor?: string | null };
    for (const m of page.items) {
      const key = m.messageId ?? '';
      kept.set(key, [...(kept.get(key) ?? []), { id: m.id, sha256: m.sha256 }]);
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return kept;
}

/**
 * Every message that got a 250 is kept exactly once, with the bytes sent, and readable (its raw
 * bytes end with them: the server puts its Received: line on top); any other message of the run
 * is kept at most once, whole. Returns the messages that may not be kept (refused ones) but are.
 */
export async function assertKeptOnce(httpPort: number, token: string, sent: Sent[]): Promise<Sent[]> {
  const kept = await keptByMessageId(httpPort, token);
  const keptAnyway: Sent[] = [];
  for (const s of sent) {
    const rows = kept.get(s.messageId) ?? [];
    if (s.accepted) {
      assert.equal(rows.length, 1, `message ${s.n} got a 250 (${s.accepted}) and is kept ${rows.length} times`);
      assert.equal(rows[0].sha256, s.sha256, `message ${s.n} is kept byte for byte`);
      const raw = Buffer.from(await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/messages/${rows[0].id}/raw`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer());
      assert.equal(createHash('sha256').update(raw.subarray(raw.length - s.size)).digest('hex'), s.sha256, `message ${s.n} reads back whole`);
    } else {
      assert.ok(rows.length <= 1, `message ${s.n} (not acknowledged: ${s.refused ?? 'no answer'}) is kept ${rows.length} times`);
      if (rows.length) {
        assert.equal(rows[0].sha256, s.sha256, `message ${s.n} is kept whole`);
        keptAnyway.push(s);
      }
    }
  }
  return keptAnyway;
}
