#!/usr/bin/env node
'use strict';
// CommonJS on purpose (bin/package.json): fsync of many concurrent message files runs on
// libuv's thread pool, whose size is read once, when the pool first starts. An ES module's
// loader has started it (4 threads) before the module body runs; a CommonJS entry runs first.
process.env.UV_THREADPOOL_SIZE ??= '16';
const pipe = process.argv[2] === 'deliver';
if (pipe) {
  // The MTA pipe must never exit 1 (Postfix and Exim bounce on it), not even while the modules
  // load: until the command installs its own guard (which knows whether the message was kept),
  // any fault defers it with 75.
  const early = (err) => {
    process.stderr.write(`4.3.0 Internal error: ${String(err && err.message ? err.message : err).replace(/[\r\n]+/g, ' ')}\n`);
    process.exit(75);
  };
  process.on('uncaughtException', early);
  process.on('unhandledRejection', early);
}
import('../dist/cli/main.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      // Not even loaded (dist/ missing or broken). The MTA pipe (`deliver`) must still answer
      // 75 with a 4.3.0 line, never Node's exit 1, which Postfix and Exim take as a bounce.
      process.stderr.write(`${pipe ? '4.3.0 Internal error: ' : 'postroom: '}${String(err && err.message ? err.message : err).replace(/[\r\n]+/g, ' ')}\n`);
      process.exitCode = pipe ? 75 : 70;
    },
  );
