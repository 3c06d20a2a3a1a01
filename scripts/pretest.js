#!/usr/bin/env node
// `npm test` runs this first (the pretest script): it builds what the test suite needs and is not
// built by `npm install`, so `npm install && npm test` passes on any machine, and CI runs exactly
// what a user runs. Incremental: fast when everything is built.
//  - the prebuilt binary (prebuilds/<platform>-<arch>/moecap.node) the packaging test installs:
//    copied from the addon npm install built when that is newer than every native source, else
//    `npm run prebuild`;
//  - the CUDA library (build-cuda/) when nvcc is present: `npm run build:cuda` (cmake rebuilds only
//    what changed). Without nvcc it says so and the CUDA build tests skip with that reason;
//  - the MPI transport (build-mpi/) when mpicxx is present: `npm run build:mpi` (a few seconds).
//    Without MPI it says so and the mpirun tests skip with that reason.
// MOECAP_PRETEST=0 skips all of it.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const log = (s) => console.log(`pretest: ${s}`);

/** Newest mtime (ms) of the files under `dirs` whose names match `re`. */
function newest(dirs, re) {
  let t = 0;
  const walk = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else if (re.test(p)) t = Math.max(t, st.mtimeMs);
  };
  dirs.forEach((d) => walk(path.join(root, d)));
  return t;
}
const mtime = (f) => {
  try {
    return fs.statSync(f).mtimeMs;
  } catch {
    return 0;
  }
};

function npmRun(script, env = {}) {
  log(`npm run ${script}`);
  const r = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', script], { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  return r.status === 0;
}

function prebuild() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const target = path.join(dir, 'moecap.node');
  const sources = newest(['native', 'binding.gyp'], /\.(cc|h|gyp)$/);
  if (mtime(target) >= sources) return log(`prebuild up to date (${path.relative(root, target)})`);
  const built = path.join(root, 'build', 'Release', 'moecap.node');
  if (mtime(built) >= sources) {
    // The same node-gyp build prebuildify makes; stripped as `prebuildify --strip` does.
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(built, target);
    const s = spawnSync('strip', ['--strip-all', target]);
    return log(`prebuild: ${path.relative(root, target)} from build/Release${s.status === 0 ? ' (stripped)' : ''}`);
  }
  if (!npmRun('prebuild')) log('prebuild failed: the prebuild tests will fail with the reason above');
}

function cuda() {
  // build-cuda.js prints its own skip line (no nvcc) or the cmake output; cmake rebuilds only what changed.
  const r = spawnSync(process.execPath, [path.join(__dirname, 'build-cuda.js')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) log('build:cuda failed (output above): the CUDA build tests will fail');
}

function mpi() {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'build-mpi.js')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) log('build:mpi failed (output above): the mpirun tests will fail');
}

if (process.env.MOECAP_PRETEST === '0') log('skipped (MOECAP_PRETEST=0)');
else {
  prebuild();
  cuda();
  mpi();
}
