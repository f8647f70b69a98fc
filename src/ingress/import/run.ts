import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { asMailError, mailError, type MailError } from '../../core/errors.js';
import type { HeaderLine } from '../../core/message.js';
import type { Accept } from '../../intake/accept.js';
import { parseHeaderBlock } from '../../mime/header-sniff.js';
import type { Db } from '../../store/db.js';
import { clearImportProgress, readImportProgress, saveImportProgress, setMessageFlags } from '../../store/imports.js';
import { importEnvelope } from './envelope.js';
import { detectVariant, fromLineSender, MboxReader, type MboxVariant } from './mbox.js';

/** The scope of the dedup key of imported mail without a Message-ID: the same bytes to the same recipients are one message. */
export const IMPORT_SCOPE = 'import';

/** What an import is given to read. */
export type ImportSource =
  | { kind: 'mbox'; path: string; variant: MboxVariant | 'auto' }
  | { kind: 'file'; path: string; flags: string[] }
  | { kind: 'stdin'; stream: Readable };

export interface ImportOptions {
  /** --from: the envelope sender of every message. */
  from?: string;
  /** --to: the envelope recipients of every message. */
  to?: string[];
  /** false (--no-route): keep without routing. */
  route: boolean;
  maxSize: number;
  trace: boolean;
  headerLimit: number;
  /** Messages handed to intake and not yet committed, at most (they share group commits). */
  window?: number;
  /** Told after each message. */
  onProgress?: (c: ImportCounts) => void;
  /** Aborted (Ctrl-C): stop reading, let the messages in flight finish, save the place. */
  signal?: AbortSignal;
}

export interface ImportCounts {
  /** Messages read (kept, already there, refused). */
  read: number;
  kept: number;
  duplicates: number;
  refused: number;
  /** Input bytes read so far. */
  bytes: number;
  /** The first refusal and where: what the summary and the exit code report. */
  firstRefusal?: { where: string; error: MailError };
  /** Set when the store could not keep a message (transient): the import stopped there. */
  failed?: { where: string; error: MailError };
  /** Set when a run stopped at the signal. */
  interrupted?: boolean;
  /** A source that could not be read at all (missing file, not an mbox). */
  badInput?: { where: string; error: MailError };
}

/** Where a resumable import keeps its place: the file's real path (long paths by their hash). */
async function sourceKey(file: string): Promise<string> {
  const real = await realpath(file);
  const key = `mbox:${real}`;
  return key.length <= 600 ? key : `mbox-sha256:${createHash('sha256').update(real).digest('hex')}`;
}

/** sha256 of up to 4 KiB before `pos`: that a saved position still belongs to this file's bytes. */
async function tailHash(file: string, pos: number): Promise<string> {
  const len = Math.min(4096, pos);
  const buf = Buffer.alloc(len);
  const fh = await open(file, 'r');
  try {
    await fh.read(buf, 0, len, pos - len);
  } finally {
    await fh.close();
  }
  return createHash('sha256').update(buf).digest('hex');
}

async function readFirst(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The header block off the front of a message's chunks (up to `limit` bytes), and the chunks read. */
async function readHead(it: AsyncIterator<Buffer>, limit: number): Promise<{ headers: HeaderLine[]; chunks: Buffer[] }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const end = headEnd(all);
    if (end >= 0 || size >= limit) return { headers: parseHeaderBlock(all.subarray(0, end >= 0 ? end : limit)), chunks: all.length ? [all] : [] };
    const r = await it.next();
    if (r.done) return { headers: parseHeaderBlock(all), chunks: all.length ? [all] : [] };
    chunks.length = 0;
    chunks.push(all.length ? Buffer.concat([all, r.value]) : r.value);
    size += r.value.length;
  }
}

function headEnd(buf: Buffer): number {
  if (buf[0] === 0x0a || (buf[0] === 0x0d && buf[1] === 0x0a)) return 0;
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  return crlf < 0 ? lf : lf < 0 ? crlf : Math.min(crlf, lf);
}

interface InFlight {
  offset: number;
  done: boolean;
  settle: Promise<void>;
}

/**
 * Import messages through intake, the one door every ingress uses: each message is kept (its
 * bytes fsynced, its row committed) exactly as it came, with the envelope its headers name
 * (importEnvelope), and a dedup key that makes a second run keep nothing twice (IMPORT_SCOPE).
 * Up to `window` messages wait for a commit at once, so group commit shares the fsyncs; the
 * input is read message by message and never held whole. An mbox's place is saved every few
 * seconds (import_progress): after Ctrl-C or kill -9, a rerun starts at the first message not
 * known to be kept; the ones after it that were, the dedup key finds.
 */
export class Importer {
  readonly counts: ImportCounts = { read: 0, kept: 0, duplicates: 0, refused: 0, bytes: 0 };
  private baseBytes = 0;

  constructor(
    private readonly deps: { accept: Accept; db: Db },
    private readonly opts: ImportOptions,
  ) {}

  private get stopped(): boolean {
    return !!this.counts.failed || !!this.opts.signal?.aborted;
  }

  /** Import every source in turn; stops early only when the store fails or the signal says so. */
  async run(sources: ImportSource[]): Promise<ImportCounts> {
    for (const s of sources) {
      if (this.stopped) break;
      const where = s.kind === 'stdin' ? 'standard input' : s.path;
      try {
        if (s.kind === 'mbox') await this.mbox(s.path, s.variant);
        else if (s.kind === 'file') await this.file(s.path, s.flags);
        else await this.one(where, s.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, []);
      } catch (err) {
        const e = asMailError(err);
        if (e.code === 'BAD_MAILBOX' || e.code === 'NO_INPUT') this.counts.badInput ??= { where, error: e };
        else if (e.transient) this.counts.failed ??= { where, error: e };
        else throw err;
      }
    }
    if (this.opts.signal?.aborted) this.counts.interrupted = true;
    return this.counts;
  }

  private async file(file: string, flags: string[]): Promise<void> {
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw mailError('NO_INPUT', `${file}: ${(err as Error).message}`);
    }
    const stream = createReadStream(file, { highWaterMark: 1024 * 1024 });
    try {
      await this.one(file, stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, flags);
    } finally {
      stream.destroy();
    }
    this.baseBytes += size;
    this.counts.bytes = this.baseBytes;
    this.opts.onProgress?.(this.counts);
  }

  /** One message from a file or standard input, kept before the next is read. */
  private async one(where: string, it: AsyncIterator<Buffer>, flags: string[]): Promise<void> {
    let bytes = 0;
    const counted = {
      next: async () => {
        const r = await it.next();
        if (!r.done) {
          bytes += r.value.length;
          this.counts.bytes = this.baseBytes + bytes;
        }
        return r;
      },
    };
    const entry = await this.start(where, 0, counted, flags);
    await entry.settle;
  }

  private async mbox(file: string, asked: MboxVariant | 'auto'): Promise<void> {
    const stdin = file === '-';
    let size = 0;
    let key: string | undefined;
    let start = 0;
    let variant: MboxVariant = asked === 'auto' ? 'mboxrd' : asked;
    if (!stdin) {
      try {
        size = (await stat(file)).size;
        key = await sourceKey(file);
      } catch (err) {
        throw mailError('NO_INPUT', `${file}: ${(err as Error).message}`);
      }
      if (asked === 'auto') variant = detectVariant(await readFirst(file, 512 * 1024), size);
      const saved = await readImportProgress(this.deps.db.kysely, key);
      if (saved && saved.position > 0 && saved.position <= size && (await tailHash(file, saved.position)) === saved.tailSha256) {
        start = saved.position;
      }
    }
    const input = stdin ? process.stdin : createReadStream(file, { start, highWaterMark: 1024 * 1024 });
    const reader = new MboxReader(input[Symbol.asyncIterator]() as AsyncIterator<Buffer>, variant, start, this.opts.headerLimit);
    const window = this.opts.window ?? 64;
    const inFlight: InFlight[] = [];
    let lastSave = Date.now();
    const base = this.baseBytes;
    const position = () => inFlight.find((f) => !f.done)?.offset ?? reader.offset;
    const save = async () => {
      if (!key) return;
      const pos = position();
      await saveImportProgress(this.deps.db.kysely, key, { position: pos, tailSha256: await tailHash(file, pos), messages: this.counts.read });
      lastSave = Date.now();
    };
    try {
      if (start > 0 && !stdin) {
        // The bytes before the saved place count as read: the bar starts where the last run stopped.
        this.counts.bytes = base + start;
      }
      for (;;) {
        if (this.stopped) break;
        const m = await reader.next();
        if (!m) break;
        const entry = await this.start(`${file} at byte ${m.offset}`, m.offset, m.body, [], fromLineSender(m.fromLine));
        inFlight.push(entry);
        this.counts.bytes = base + reader.offset;
        while (inFlight.length && inFlight[0].done) inFlight.shift();
        if (inFlight.length >= window) await inFlight[0].settle;
        while (inFlight.length && inFlight[0].done) inFlight.shift();
        if (key && Date.now() - lastSave > 2000) await save();
      }
      await Promise.all(inFlight.map((f) => f.settle));
      inFlight.length = 0;
    } finally {
      await Promise.allSettled(inFlight.map((f) => f.settle));
      if (!stdin) input.destroy();
    }
    if (key) {
      // A failure or an interruption leaves the place saved; a file read to its end starts over next time.
      if (this.stopped) await save();
      else await clearImportProgress(this.deps.db.kysely, key);
    }
    this.baseBytes = base + (stdin || this.stopped ? reader.offset : size);
    this.counts.bytes = this.baseBytes;
    this.opts.onProgress?.(this.counts);
  }

  /**
   * Hand one message to intake. Resolves once intake has read the message's bytes (so the
   * source can move on); `settle` resolves once it is kept, refused or failed.
   */
  private async start(where: string, offset: number, body: AsyncIterator<Buffer>, flags: string[], fromLine?: string): Promise<InFlight> {
    const entry: InFlight = { offset, done: false, settle: Promise.resolve() };
    let env;
    let head;
    try {
      head = await readHead(body, this.opts.headerLimit);
      if (!head.chunks.length) throw mailError('EMPTY_MESSAGE');
      const { mailFrom, rcptTo } = importEnvelope(head.headers, { from: this.opts.from, to: this.opts.to, fromLineSender: fromLine });
      env = { mailFrom, rcptTo, ingress: 'import', receivedAt: new Date() };
    } catch (err) {
      this.refused(where, err);
      entry.done = true;
      return entry;
    }
    let read!: () => void;
    const consumed = new Promise<void>((r) => (read = r));
    const chunks = head.chunks;
    async function* feed() {
      try {
        for (const c of chunks) yield c;
        for (let r = await body.next(); !r.done; r = await body.next()) yield r.value;
      } finally {
        read();
      }
    }
    const accepted = this.deps.accept(env, feed(), {
      maxSize: this.opts.maxSize,
      trace: this.opts.trace,
      dedupScope: IMPORT_SCOPE,
      handoff: 'import',
      route: this.opts.route,
    });
    entry.settle = (async () => {
      try {
        const stored = await accepted;
        // Also for a duplicate (stored.id is then the copy kept before): a run cut off between
        // the commit and this write records the flags at the next.
        if (flags.length) await setMessageFlags(this.deps.db.kysely, stored.id, flags);
        this.counts.read++;
        if (stored.duplicate) this.counts.duplicates++;
        else this.counts.kept++;
        entry.done = true;
        this.opts.onProgress?.(this.counts);
      } catch (err) {
        const e = asMailError(err);
        if (e.transient) {
          this.counts.failed ??= { where, error: e };
          return;
        }
        this.refused(where, e);
        entry.done = true;
      }
    })();
    await Promise.race([consumed, entry.settle]);
    return entry;
  }

  private refused(where: string, err: unknown): void {
    const e = asMailError(err);
    if (e.transient) {
      this.counts.failed ??= { where, error: e };
      return;
    }
    this.counts.read++;
    this.counts.refused++;
    this.counts.firstRefusal ??= { where, error: e };
    this.opts.onProgress?.(this.counts);
  }
}
