// Plain JavaScript on purpose: a worker thread loads this file directly, both from dist/ and
// from src/ under tsx in the tests (a worker does not inherit tsx's loader), with no TypeScript
// of ours in it to compile.
//
// Copies the write-ahead log back into the database file from a thread of its own. SQLite's
// automatic checkpoint runs inside a commit, on the committing thread, and fsyncs the database
// file there: on better-sqlite3 that is the event loop, stalled 10–40 ms every thousand pages.
// PASSIVE never waits for and never blocks the writer; once a checkpoint has caught up, the
// writer's next transaction starts the log from its beginning again.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, intervalMs } = workerData;
const db = new Database(file);
db.pragma('synchronous = FULL');

function checkpoint() {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ type: 'checkpoint', busy: r.busy, log: r.log, checkpointed: r.checkpointed });
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: String(err && err.message ? err.message : err) });
  }
}

const timer = setInterval(checkpoint, intervalMs);
parentPort.on('message', (m) => {
  if (m === 'now') checkpoint();
  if (m === 'stop') {
    clearInterval(timer);
    checkpoint();
    db.close();
    parentPort.close();
  }
});
