/**
 * `npm run mime-compare [dir|file…]`: parse every message with Postroom and with Python's email
 * package (scripts/mime-reference.py, /usr/bin/python3) and report, per message, where they
 * disagree on attachments (count, bytes), text (white space normalised), subject, From, date;
 * defects are listed side by side (the names differ by design). Disagreements reviewed as
 * Postroom being right are listed with their RFC clause in scripts/mime-justified.ts and counted
 * as justified (agreeing, justified, wrong). Defaults to the corpus and the
 * repro fixtures. `--json` prints every row; `--quiet` only the summary. Exits 1 when an
 * attachment both parsers found differs in its bytes and is not justified (the target is 100 %).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import iconv from 'iconv-lite';
import { Libmime } from 'libmime';
import { validateConfig } from '../src/config/load.js';
import { decodableCharset } from '../src/mime/charset-alias.js';
import { memoryBlobs } from '../src/mime/memory-blobs.js';
import { parseStream, type ParseResult } from '../src/mime/parse.js';
import { JUSTIFIED } from './mime-justified.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PYTHON = process.env.POSTROOM_PYTHON ?? '/usr/bin/python3';
const args = process.argv.slice(2);
const asJson = args.includes('--json');
const quiet = args.includes('--quiet');
const targets = args.filter((a) => !a.startsWith('--'));
const dirs = targets.length ? targets : [path.join(root, 'test/fixtures/corpus'), path.join(root, 'test/fixtures/mime-defects')];
const files = dirs.flatMap((d) =>
  statSync(d).isDirectory()
    ? readdirSync(d)
        .filter((f) => !/^(README|DISAGREEMENTS)/.test(f))
        .sort()
        .map((f) => path.join(d, f))
    : [d],
);

interface Reference {
  file: string;
  error?: string;
  attachments: { contentType: string; sha256: string; size: number; norm: string }[];
  text: string | null;
  subject: string | null;
  from: string[] | null;
  date: string | null;
  defects: string[];
}

/** Python reads every file in one process (argv only: names never pass through a shell). */
function reference(list: string[]): Map<string, Reference> {
  const out = new Map<string, Reference>();
  for (let at = 0; at < list.length; at += 100) {
    const stdout = execFileSync(PYTHON, [path.join(root, 'scripts/mime-reference.py'), ...list.slice(at, at + 100)], {
      maxBuffer: 512 * 1024 * 1024,
      encoding: 'utf8',
    });
    for (const line of stdout.split('\n').filter(Boolean)) {
      const r = JSON.parse(line) as Reference;
      out.set(r.file, r);
    }
  }
  return out;
}

const config = validateConfig({}).parse;

const libmime = new Libmime();

/** A `body` part's bytes as text, in the charset its content type names (as mailparser reads it). */
function decodeBody(b: Buffer, contentType: string): string {
  const charset = /charset="?([^";]+)"?/i.exec(contentType)?.[1] ?? 'us-ascii';
  if (/^(?:unicode-1-1-)?utf-?7$/i.test(charset)) return iconv.decode(b, 'utf7');
  // libmime's own decoder, as mailparser uses it (its aliases, windows-1252 for iso-8859-1…).
  const stream = libmime.createDecodeStream(decodableCharset(charset));
  const out: Buffer[] = [];
  stream.on('data', (c: Buffer) => out.push(c));
  stream.end(b);
  return Buffer.concat(out).toString('utf8');
}
const norm = (s: string | null | undefined) => (s ?? '').replace(/\s+/g, ' ').trim();

async function ours(file: string): Promise<{ r?: ParseResult; error?: string; text: string | null }> {
  const raw = readFileSync(file);
  const blobs = memoryBlobs(raw);
  try {
    const r = await parseStream(await blobs.open(''), { blobs, config }, 'compare');
    const bytes = (sha256: string) => r.staged.find((s) => s.sha256 === sha256)!.data!;
    // Like for like: Python's text is its inline text/plain parts, so ours is too when each has
    // a `body` part of its own (read in its declared charset); else /text, which is then that part.
    const bodies = r.save.parts.filter((p) => p.kind === 'body' && /^text\/plain\b/i.test(p.content_type));
    const textPart = r.save.parts.find((p) => p.kind === 'text');
    const text = r.save.parts.some((p) => p.kind === 'body')
      ? bodies.length
        ? bodies.map((p) => decodeBody(bytes(p.sha256), p.content_type)).join('\n')
        : null
      : textPart
        ? bytes(textPart.sha256).toString('utf8')
        : null;
    return { r, text };
  } catch (err) {
    return { error: (err as Error).message, text: null };
  }
}

interface Row {
  file: string;
  issues: string[];
  attachmentPairs: number;
  attachmentSame: number;
  messagePairs: number;
  messageSame: number;
  textCompared: boolean;
  textSame: boolean;
  defects: { postroom: string[]; python: string[] };
}

const refs = reference(files);
const rows: Row[] = [];
for (const file of files) {
  const py = refs.get(file)!;
  const me = await ours(file);
  const row: Row = { file: path.relative(root, file), issues: [], attachmentPairs: 0, attachmentSame: 0, messagePairs: 0, messageSame: 0, textCompared: false, textSame: false, defects: { postroom: [], python: py?.defects ?? [] } };
  rows.push(row);
  if (!py || py.error) row.issues.push(`python: ${py?.error ?? 'no answer'}`);
  if (!me.r) {
    row.issues.push(`postroom kept it raw: ${me.error}`);
    continue;
  }
  if (!py || py.error) continue;
  const save = me.r.save;
  row.defects.postroom = save.defects ?? [];
  const atts = save.parts.filter((p) => p.kind === 'attachment' || p.kind === 'inline');
  if (atts.length !== py.attachments.length) row.issues.push(`attachments: postroom ${atts.length}, python ${py.attachments.length}`);
  else {
    atts.forEach((a, i) => {
      const ref = py.attachments[i];
      if (a.content_type.startsWith('message/')) {
        // Python regenerates an attached message from its tree: compared with white space
        // collapsed, and counted apart from leaf parts.
        row.messagePairs++;
        const bytes = me.r!.staged.find((s) => s.sha256 === a.sha256)!.data!;
        const norm = createHash('sha256').update(Buffer.from(bytes.toString('latin1').replace(/[ \t\n\r\f\v]+/g, ' ').trim(), 'latin1')).digest('hex');
        if (norm === ref.norm) row.messageSame++;
        else row.issues.push(`attached message ${i} (${a.content_type}): differs beyond white space, ${a.size} vs ${ref.size} bytes`);
        return;
      }
      row.attachmentPairs++;
      if (a.sha256 === ref.sha256) row.attachmentSame++;
      else row.issues.push(`attachment ${i} (${a.content_type}): bytes differ, ${a.size} vs ${ref.size}`);
    });
  }
  // Python's text is the inline text/plain parts; compared only when it has one (mailparser
  // renders HTML-only mail as text, which Python does not).
  if (py.text !== null && py.text.trim()) {
    row.textCompared = true;
    row.textSame = norm(me.text) === norm(py.text);
    if (!row.textSame) {
      // Shown from where they part.
      const [a, b] = [norm(me.text), norm(py.text)];
      let at = 0;
      while (at < a.length && a[at] === b[at]) at++;
      const from = Math.max(0, at - 20);
      row.issues.push(`text differs at ${at}: ${JSON.stringify(a.slice(from, from + 80))} vs ${JSON.stringify(b.slice(from, from + 80))}`);
    }
  }
  if (norm(save.subject) !== norm(py.subject)) row.issues.push(`subject: ${JSON.stringify(save.subject)} vs ${JSON.stringify(py.subject)}`);
  const from = (save.addresses.from ?? []).map((a) => a.address.toLowerCase()).filter(Boolean);
  if (py.from !== null && from.join(',') !== py.from.join(',')) row.issues.push(`from: ${from.join(',')} vs ${py.from.join(',')}`);
  if ((save.date ?? null) !== (py.date ?? null)) row.issues.push(`date: ${save.date} vs ${py.date}`);
}

// Reviewed disagreements where Postroom is right (scripts/mime-justified.ts), each with its clause.
const justifiedOf = (r: Row, what: string) => JUSTIFIED.find((j) => j.file === r.file && j.what === what);
const stale = JUSTIFIED.filter((j) => {
  const r = rows.find((x) => x.file === j.file);
  if (!r) return true;
  if (j.what === 'text') return !r.textCompared || r.textSame;
  if (j.what === 'attachment') return r.attachmentSame === r.attachmentPairs;
  return !r.issues.some((i) => i.startsWith('attachments:'));
});
for (const r of rows) {
  r.issues = r.issues.map((i) => {
    const what = i.startsWith('text differs') ? 'text' : i.startsWith('attachments:') ? 'count' : /^attachment \d/.test(i) ? 'attachment' : '';
    const j = what ? justifiedOf(r, what) : undefined;
    return j ? `${i}\n    justified: ${j.clause}` : i;
  });
}
const sum = (f: (r: Row) => number) => rows.reduce((n, r) => n + f(r), 0);
const pairs = sum((r) => r.attachmentPairs);
const same = sum((r) => r.attachmentSame);
const textRows = rows.filter((r) => r.textCompared);
const textSame = textRows.filter((r) => r.textSame).length;
const textJustified = textRows.filter((r) => !r.textSame && justifiedOf(r, 'text')).length;
const attJustified = sum((r) => (justifiedOf(r, 'attachment') ? r.attachmentPairs - r.attachmentSame : 0));
const pct = (a: number, b: number) => (b ? ((100 * a) / b).toFixed(1) : '100.0');
if (asJson) console.log(JSON.stringify(rows, null, 2));
else if (!quiet) for (const r of rows.filter((r) => r.issues.length)) console.log(`${r.file}\n  ${r.issues.join('\n  ')}`);
const by = (re: RegExp) => rows.filter((r) => r.issues.some((i) => re.test(i))).length;
console.log(
  [
    `messages: ${rows.length}, agreeing on everything compared: ${rows.filter((r) => !r.issues.length).length}`,
    `attachment bytes identical: ${same}/${pairs} (${pct(same, pairs)} %) of leaf parts both call attachments; justified ${attJustified}, wrong ${pairs - same - attJustified}`,
    `attached messages alike (white space collapsed): ${sum((r) => r.messageSame)}/${sum((r) => r.messagePairs)}`,
    `attachment count differs: ${by(/^attachments:/)} messages`,
    `text agrees (white space normalised): ${textSame}/${textRows.length} (${pct(textSame, textRows.length)} %); justified ${textJustified}, wrong ${textRows.length - textSame - textJustified} (agreeing or justified ${pct(textSame + textJustified, textRows.length)} %)`,
    `attachment count: justified ${rows.filter((r) => r.issues.some((i) => i.startsWith('attachments:')) && justifiedOf(r, 'count')).length} of ${by(/^attachments:/)}`,
    ...(stale.length ? [`stale justified entries (they agree now): ${stale.map((j) => `${j.file} (${j.what})`).join(', ')}`] : []),
    `subject differs: ${by(/^subject:/)}, from differs: ${by(/^from:/)}, date differs: ${by(/^date:/)}, kept raw: ${by(/^postroom kept/)}`,
    `with defects: postroom ${rows.filter((r) => r.defects.postroom.length).length}, python ${rows.filter((r) => r.defects.python.length).length}`,
  ].join('\n'),
);
process.exitCode = same + attJustified === pairs ? 0 : 1;
