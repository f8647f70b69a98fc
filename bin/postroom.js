#!/usr/bin/env node
'use strict';
// CommonJS on purpose (bin/package.json): fsync of many concurrent message files runs on
// libuv's thread pool, whose size is read once, when the pool first starts. An ES module's
// loader has started it (4 threads) before the module body runs; a CommonJS entry runs first.
process.env.UV_THREADPOOL_SIZE ??= '16';
import('../dist/cli/main.js')
  .then(({ main }) => main(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  });
