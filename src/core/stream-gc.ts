import v8 from 'node:v8';
import vm from 'node:vm';

/** A stream counts once past this many bytes; smaller messages leave V8 to its own collections. */
const LARGE_STREAM = 1024 * 1024;
/** Bytes of large streams between two young-generation collections of our own. */
const COLLECT_EVERY = 4 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;

let collect: Collect | undefined;

/**
 * V8's collector, fetched at the first large stream (the context it lives in costs ~0.3 MiB).
 * Without `node --expose-gc` there is no global `gc`: allow it for one new context, take it
 * from there and disallow it again, as jest's leak detector does, so the main context never
 * gains a global `gc`.
 */
function collector(): Collect {
  if (collect) return collect;
  const global = (globalThis as { gc?: Collect }).gc;
  if (typeof global === 'function') return (collect = global);
  v8.setFlagsFromString('--expose-gc');
  try {
    return (collect = vm.runInNewContext('gc') as Collect);
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

let sinceCollect = 0;

/**
 * Count bytes a large message stream delivered (the raw message being received, a part being
 * staged) and collect V8's young generation every few MiB of them.
 *
 * Why: a Buffer's memory goes back only when the collector finds the Buffer dead. Receiving a
 * message allocates a fresh Buffer for every socket read (and smtp-server copies each one once
 * more) while the JavaScript objects holding them are tiny, so the young generation fills
 * slowly; for Buffer memory alone V8 starts a collection once ~32 MiB of it has been allocated
 * since the last one (measured: the same whatever the heap flags). Receiving one 200 MiB
 * message thus kept ~30 MiB of dead buffers resident on top of a ~140 MiB process (the budget
 * is 128 MiB for the whole process, bench/scenarios/large-message-rss.ts); with a young collection every 4 MiB, ~10 MiB. A young collection visits only
 * live young objects: well under a millisecond, ~50 of them for 200 MiB.
 *
 * Not used for parsing: the parser keeps MiBs of chunks queued, and chunks that live through two
 * young collections move to the old generation, where dead ones wait for a full collection:
 * forcing young collections there made the peak worse, and forcing full ones halved the parse
 * speed of a large message. Parsing is kept small by bounding its chunks instead (blobs.ts).
 *
 * `streamSoFar`: the stream's bytes up to and including these `n`.
 */
export function streamedBytes(n: number, streamSoFar: number): void {
  if (streamSoFar <= LARGE_STREAM) return;
  sinceCollect += n;
  if (sinceCollect < COLLECT_EVERY) return;
  sinceCollect = 0;
  collector()({ type: 'minor' });
}
