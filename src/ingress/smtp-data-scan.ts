import { createHash } from 'node:crypto';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/**
 * smtp-server's DATA reader (SMTPStream#_feedDataStream) looks for the end of the message and
 * for dot-stuffed lines (RFC 5321 §4.5.2) by testing every byte of the message in JavaScript:
 * about 6 ms of CPU per MiB, the largest single cost on the event loop that serves every SMTP
 * session (a CPU profile of 1 MiB messages: 5 % of the main thread, above hashing). The only
 * bytes that matter are a dot after a line feed, so this version asks Buffer#indexOf (memchr
 * speed, native) for each `LF .` and tests those positions exactly as the original tests every
 * position. Everything else (the start-of-DATA guard, the bytes kept across chunks, the byte
 * count, the end of data mode) is the library's code unchanged, so its smuggling guards stay as
 * they are; test/unit/smtp-data-scan.property.test.ts holds the two to the same output for any
 * bytes cut into any chunks.
 *
 * The method is replaced only when the installed one is the one this was written against (a
 * hash of its source): a new smtp-server release keeps its own reader, correct and slower,
 * until someone compares them again.
 */

// sha256 of SMTPStream.prototype._feedDataStream.toString() in smtp-server 3.21.6 (ESM build).
const KNOWN = new Set(['9d8b903f9a3a63542d72e19a9e2f67009a3b1107a28d57e8e7369355454ff230']);

const DOT_AFTER_LF = Buffer.from('\n.');
const END_SEQUENCE = Buffer.from('\r\n.\r\n');
const DOT_CRLF = Buffer.from('.\r\n');

interface StreamInternals {
  _dataStream: NodeJS.WritableStream & { writable: boolean; destroyed: boolean };
  _lastBytes: Buffer | false;
  _atDataStart: boolean;
  _countDataBytes(n: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: (err?: Error) => void): void;
  _feedDataStream(chunk: Buffer, done: (err?: Error) => void): void;
}

/** The library's reader with the per-byte loop replaced by an indexOf scan (see above). */
export function indexOfFeedDataStream(this: StreamInternals, chunk: Buffer, done: (err?: Error) => void): void {
  const dataStream = this._dataStream;
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat([this._lastBytes, chunk], this._lastBytes.length + chunk.length);
    this._lastBytes = false;
  }
  let len = chunk.length;
  // The first line may be the end already (an empty message), but only while nothing of this
  // DATA has been consumed: a leading `..` that arrived alone was content, not a terminator.
  if (this._atDataStart && len >= 3 && Buffer.compare(chunk.subarray(0, 3), DOT_CRLF) === 0) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    len--;
    this._atDataStart = false;
  }
  // The library tests i = 2 … len - 3 for chunk[i] === '.' && chunk[i - 1] === LF: that is a
  // `LF .` starting at p = i - 1, with 1 <= p < len - 3.
  for (let p = chunk.indexOf(DOT_AFTER_LF, 1); p !== -1 && p < len - 3; p = chunk.indexOf(DOT_AFTER_LF, p + 1)) {
    const i = p + 1;
    if (Buffer.compare(chunk.subarray(i - 2, i + 3), END_SEQUENCE) === 0) {
      const buf = chunk.subarray(0, i);
      this._countDataBytes(buf.length);
      this._endDataMode(buf, chunk.subarray(i + 3), done);
      return;
    }
    if (chunk[i + 1] === 0x2e) {
      const buf = chunk.subarray(0, i);
      this._lastBytes = false;
      this._countDataBytes(buf.length);
      if (dataStream.writable) dataStream.write(buf);
      const rest = chunk.subarray(i + 1);
      setImmediate(() => this._feedDataStream(rest, done));
      return;
    }
  }
  this._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  if (this._lastBytes.length < chunk.length) {
    const buf = chunk.subarray(0, chunk.length - this._lastBytes.length);
    this._countDataBytes(buf.length);
    if (dataStream.writable) {
      const handled = dataStream.write(buf);
      if (!handled && !dataStream.destroyed) {
        const onDrain = () => {
          dataStream.removeListener('drain', onDrain);
          dataStream.removeListener('close', onDrain);
          done();
        };
        dataStream.once('drain', onDrain);
        dataStream.once('close', onDrain);
      } else {
        done();
      }
    } else {
      done();
    }
  } else {
    done();
  }
}

/** The library's own reader, for the comparison test. */
export const libraryFeedDataStream = (SMTPStream.prototype as unknown as StreamInternals)._feedDataStream;

/** sha256 of a function's source: which reader is installed. */
export function sourceHash(fn: (...args: never[]) => unknown): string {
  return createHash('sha256').update(fn.toString()).digest('hex');
}

let applied: boolean | undefined;

/**
 * Install the indexOf reader on SMTPStream if the installed reader is the known one; returns
 * whether it did. Idempotent.
 */
export function applyDataScan(): boolean {
  if (applied !== undefined) return applied;
  const proto = SMTPStream.prototype as unknown as StreamInternals;
  applied = KNOWN.has(sourceHash(proto._feedDataStream));
  if (applied) proto._feedDataStream = indexOfFeedDataStream;
  return applied;
}

