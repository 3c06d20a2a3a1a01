#!/usr/bin/env node
// `npm run build:mpi`: compiles mpi/ep_mpi.cc with the mpicxx found ($MPICXX, then $PATH) into
// build-mpi/libmoecap_mpi.so, the expert-parallel transport the addon loads at run time (the addon
// itself never links MPI). Exits 0 with a skip note when no mpicxx is found, so machines without
// MPI are not broken by it; MOECAP_REQUIRE_MPI=1 makes that an error.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const build = path.join(root, 'build-mpi');

function findMpicxx() {
  const cands = [];
  if (process.env.MPICXX) cands.push(process.env.MPICXX);
  for (const dir of (process.env.PATH || '').split(path.delimiter)) if (dir) cands.push(path.join(dir, 'mpicxx'));
  return cands.find((c) => fs.existsSync(c));
}

function run(cmd, args) {
  console.log(`> ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status || 1);
}

const mpicxx = findMpicxx();
if (!mpicxx) {
  const msg = 'build:mpi skipped: mpicxx not found (looked at $MPICXX, $PATH); install an MPI, e.g. apt-get install openmpi-bin libopenmpi-dev';
  if (process.env.MOECAP_REQUIRE_MPI === '1') {
    console.error(msg);
    process.exit(1);
  }
  console.log(msg);
  process.exit(0);
}
const t0 = Date.now();
fs.mkdirSync(build, { recursive: true });
const out = path.join(build, 'libmoecap_mpi.so');
run(mpicxx, [
  '-O2',
  '-std=c++17',
  '-fPIC',
  '-shared',
  '-Wall',
  `-I${path.join(root, 'native', 'core')}`,
  path.join(root, 'mpi', 'ep_mpi.cc'),
  '-o',
  out,
  ...process.argv.slice(2),
]);
console.log(`build:mpi: ${out} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
