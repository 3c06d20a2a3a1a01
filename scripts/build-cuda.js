#!/usr/bin/env node
// `npm run build:cuda`: configures and builds cuda/CMakeLists.txt into build-cuda/ with cmake-js
// (a devDependency; offline: cuda/package.json declares a Node-API project, so cmake-js takes the
// node-api-headers package and downloads no Node headers, and the library includes none), or with
// plain cmake where cmake-js is not installed or MOECAP_CUDA_CMAKE=plain.
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

// cmake-js's CLI, when the devDependency is installed.
function findCmakeJs() {
  try {
    return require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return null;
  }
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
const defines = ['-DCMAKE_BUILD_TYPE=Release', `-DCMAKE_CUDA_COMPILER=${nvcc}`, ...process.argv.slice(2)];
const t0 = Date.now();
const cmakeJs = process.env.MOECAP_CUDA_CMAKE === 'plain' ? null : findCmakeJs();
if (cmakeJs) {
  // cmake-js spells a cache definition --CDNAME=VALUE; -m: Makefiles, the generator plain cmake
  // picks, so either tool can build in build-cuda/ after the other.
  run(process.execPath, [
    cmakeJs,
    'build',
    '-d',
    path.join(root, 'cuda'),
    '-O',
    build,
    '-m',
    '-p',
    jobs,
    ...defines.map((d) => (d.startsWith('-D') ? `--CD${d.slice(2)}` : d)),
  ]);
} else {
  run('cmake', ['-S', path.join(root, 'cuda'), '-B', build, ...defines]);
  run('cmake', ['--build', build, '-j', jobs]);
}
console.log(`build:cuda: ${path.join(build, 'libmoecap_cuda.so')} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
