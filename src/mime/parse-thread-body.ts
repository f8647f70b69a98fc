import { Readable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import type { StoredMessage } from '../core/message.js';
import { stageStream } from '../store/stage.js';
import { parseStored, type ParseLimits, type ParseResult } from './parse.js';
import type { ThreadReply, ThreadRequest } from './parse-thread.js';

// The thread's side of ParseThread: parse a message handed over as bytes, entirely in memory,
// and send back what parsing found and the parts' bytes. Nothing here touches the store.

const config = (workerData as { config: ParseLimits }).config;

/** A blob store of one message, in memory: the raw bytes to read, and parts staged as buffers. */
function memoryBlobs(raw: Uint8Array) {
  return {
    async open(): Promise<Readable> {
      return Readable.from([raw], { objectMode: false });
    },
    stage(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
      // Never spills to a file: only messages of a few MiB come here (THREAD_PARSE_MAX).
      return stageStream('', src, { inlineLimit: Number.MAX_SAFE_INTEGER, fsync: false });
    },
    async discard(): Promise<void> {},
  };
}

async function handle(req: ThreadRequest): Promise<ThreadReply> {
  try {
    const result: ParseResult = await parseStored(req.message as StoredMessage, { blobs: memoryBlobs(req.raw), config });
    return { seq: req.seq, result };
  } catch (err) {
    return { seq: req.seq, error: err instanceof Error ? err.message : String(err) };
  }
}

parentPort!.on('message', (req: ThreadRequest) => {
  void handle(req).then((reply) => parentPort!.postMessage(reply));
});
