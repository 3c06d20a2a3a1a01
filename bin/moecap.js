#!/usr/bin/env node
'use strict';
// libuv's pool runs the addon's asynchronous work; plan-cache replays one layer per pool thread, so
// a pool of libuv's default 4 would leave the cores of a larger machine idle. libuv reads the size
// once, when the pool first starts: set here, before anything can start it, unless the user did.
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(Math.min(1024, Math.max(4, require('os').availableParallelism())));
require('../dist/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
