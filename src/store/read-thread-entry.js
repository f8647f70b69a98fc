// Plain JavaScript on purpose, like wal-checkpoint-worker.js and mime/parse-thread-entry.js: a worker thread does not
// inherit tsx's loader, so under the tests (running src/ through tsx) the thread registers it
// before it loads the TypeScript body. From dist/ the body is JavaScript and tsx is not needed
// (it is a development dependency only).
import { workerData } from 'node:worker_threads';

if (workerData.body.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.body);
