#!/usr/bin/env node
// fsync of many concurrent message files runs on libuv's thread pool; the default of 4
// threads would cap group commit, so widen it before anything touches the pool.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
