#!/usr/bin/env node
// `npm run build:cuda`: configures and builds cuda/CMakeLists.txt into build-cuda/ with plain
// cmake (the CMakeLists also works under cmake-js; plain cmake needs no Node headers download).
// Output: build-cuda/libmoecap_cuda.so (+ gpu_selftest). Exits 0 with a skip note when no nvcc
// is found, so CPU-only machines are not broken by it; MOECAP_REQUIRE_CUDA=1 makes that an error.
// Extra cmake arguments pass through: npm run build:cuda -- -DCMAKE_CUDA_ARCHITECTURES=90-real
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const build = path.join(root, 'build-cuda');

function findNvcc() {
  const cands = [];
  if (process.env.CUDACXX) cands.push(process.env.CUDACXX);
  if (process.env.CUDA_HOME) cands.push(path.join(process.env.CUDA_HOME, 'bin', 'nvcc'));
  cands.push('/usr/local/cuda/bin/nvcc');
  for (const dir of (process.env.PATH || '').split(path.delimiter)) if (dir) cands.push(path.join(dir, 'nvcc'));
  return cands.find((c) => fs.existsSync(c));
}

function run(cmd, args) {
  console.log(`> ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status || 1);
}

const nvcc = findNvcc();
if (!nvcc) {
  const msg = 'build:cuda skipped: nvcc not found (looked at $CUDACXX, $CUDA_HOME/bin, /usr/local/cuda/bin, $PATH)';
  if (process.env.MOECAP_REQUIRE_CUDA === '1') {
    console.error(msg);
    process.exit(1);
  }
  console.log(msg);
  process.exit(0);
}
const jobs = process.env.MOECAP_BUILD_JOBS || '2';
const t0 = Date.now();
run('cmake', ['-S', path.join(root, 'cuda'), '-B', build, '-DCMAKE_BUILD_TYPE=Release', `-DCMAKE_CUDA_COMPILER=${nvcc}`,
  ...process.argv.slice(2)]);
run('cmake', ['--build', build, '-j', jobs]);
console.log(`build:cuda: ${path.join(build, 'libmoecap_cuda.so')} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
