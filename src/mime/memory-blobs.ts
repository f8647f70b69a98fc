import { Readable } from 'node:stream';
import type { StagedBlob } from '../store/ports.js';
import { stageStream } from '../store/stage.js';
import type { ParseBlobs } from './parse.js';

/**
 * A blob store of one message, in memory: the raw bytes to read, and parts staged as buffers
 * (never spilled to a file). For the parse thread, which only gets messages of a few MiB
 * (THREAD_PARSE_MAX), and for tools that parse a file without a store (mime-compare).
 */
export function memoryBlobs(raw: Uint8Array): ParseBlobs {
  return {
    async open(): Promise<Readable> {
      return Readable.from([raw], { objectMode: false });
    },
    stage(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<StagedBlob> {
      return stageStream('', src, { inlineLimit: Number.MAX_SAFE_INTEGER, fsync: false });
    },
    async discard(): Promise<void> {},
  };
}
