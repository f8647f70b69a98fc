import { parentPort, workerData } from 'node:worker_threads';
import type { StoredMessage } from '../core/message.js';
import { memoryBlobs } from './memory-blobs.js';
import { parseStored, type ParseLimits, type ParseResult } from './parse.js';
import type { ThreadReply, ThreadRequest } from './parse-thread.js';

// The thread's side of ParseThread: parse a message handed over as bytes, entirely in memory,
// and send back what parsing found and the parts' bytes. Nothing here touches the store.

const config = (workerData as { config: ParseLimits }).config;

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
