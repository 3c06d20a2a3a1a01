// One rank of the mpirun test (test/ep/ep_mpi.test.ts): node test/ep/mpi_rank.js OUT_DIR [MODE [CHECKPOINT]]
// Every rank runs its share of an expert-parallel pass; rank 0 gathers the outputs, runs the
// single-process layer on the same weights and inputs, and writes OUT_DIR/result.json atomically.
// Modes: contiguous (default); balanced (+ 2 replicas); offload (int8, redundant 2, each rank a
// cache of half its experts, two passes); checkpoint (layer 0 of CHECKPOINT, each rank's bytes
// read counted); capacity (capacityFactor 0.5: drops decided over both ranks' tokens);
// checkpoint-offload (the same, each rank's experts converted into its own cached
// expert file under OUT_DIR, or reused from there); die (rank 1 exits with code 3 after building its share, before the pass);
// cuda, cuda-bf16, cuda-int8 (backend 'cuda': each rank's experts on its GPU, compared with the
// single-process CUDA layer; bf16 at T = 40 takes the tensor-core path, int8 adds 2 replicas;
// run by scripts/gpu-check.sh, as the GPU check needs a GPU). A mode ending in "+nccl" (cuda+nccl,
// cuda-int8+nccl, ...) exchanges the GPU ranks' rows over NCCL (ep.transport 'nccl').
'use strict';
const fs = require('fs');
const path = require('path');
const dist = path.resolve(__dirname, '..', '..', 'dist');
const { createMoeLayer } = require(path.join(dist, 'moe_layer'));
const ep = require(path.join(dist, 'ep'));

const { checkpointReadCounters } = require(path.join(dist, 'checkpoint', 'checkpoint'));

const [outDir, modeArg, checkpoint] = process.argv.slice(2);
const nccl = /\+nccl$/.test(modeArg ?? '');
const mode = nccl ? modeArg.replace(/\+nccl$/, '') : modeArg;
const P = 2,
  T = mode === 'cuda-bf16' ? 40 : 23,
  H = 64;
const cudaDtype = { cuda: 'f32', 'cuda-bf16': 'bf16', 'cuda-int8': 'int8' }[mode];
const seeded = { hidden: H, intermediate: 40, experts: 7, topK: 2, threads: 1, poison: true, sharedExperts: { intermediate: 24 }, weights: { seed: 11 } };
const layer = cudaDtype
  ? { ...seeded, backend: 'cuda', dtype: cudaDtype }
  : mode === 'checkpoint'
    ? { checkpoint, layer: 0, threads: 1, poison: true }
    : mode === 'checkpoint-offload'
      ? { checkpoint, layer: 0, threads: 1, poison: true, offload: { capacity: { fraction: 0.5 } }, cacheDir: outDir }
      : mode === 'offload'
        ? { ...seeded, hidden: 128, dtype: 'int8', offload: { capacity: { fraction: 0.5 } } }
        : mode === 'capacity'
          ? { ...seeded, capacityFactor: 0.5 }
          : seeded;
const hidden = mode === 'offload' ? 128 : H;

function input(H) {
  const x = new Float32Array(T * H);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.731 + 0.2) * (1 + (i % 7) / 5);
  return x;
}

async function main() {
  const world = ep.initEp(P);
  const loads = mode === 'balanced' || mode === 'offload' || mode === 'cuda-int8' ? [9, 1, 1, 7, 3, 2, 5] : undefined;
  const opts =
    mode === 'balanced'
      ? { ranks: P, placement: 'balanced', redundant: 2, loads }
      : mode === 'offload' || mode === 'cuda-int8'
        ? { ranks: P, redundant: 2, loads }
        : { ranks: P };
  const before = checkpointReadCounters();
  const l = await ep.createEpLayer(layer, nccl ? { ...opts, transport: 'nccl' } : opts);
  const after = checkpointReadCounters();
  const read = { preads: after.preads - before.preads, bytes: after.bytes - before.bytes };
  if (mode === 'die' && world.rank === 1) process.exit(3);
  const x = input(hidden);
  const t0 = ep.rankFirstToken(T, P, world.rank),
    t1 = ep.rankFirstToken(T, P, world.rank + 1);
  let r = await l.forward(x.subarray(t0 * hidden, t1 * hidden));
  const first = r.stats;
  if (mode === 'offload') r = await l.forward(x.subarray(t0 * hidden, t1 * hidden)); // a second pass: hits
  // MOECAP_TEST_NO_CALIBRATION=1: no link calibration (link: null), for runs over a slow emulated link.
  const link = process.env.MOECAP_TEST_NO_CALIBRATION === '1' ? null : await ep.calibrateLink();
  const parts = await l.gather(new Uint8Array(r.output.buffer, r.output.byteOffset, r.output.byteLength));
  const stats = await l.gather(Buffer.from(JSON.stringify({ ...r.stats, first, read, experts: Array.from(l.experts), device: l.device })));
  if (world.rank === 0) {
    const single = await createMoeLayer({ ...layer, offload: undefined }); // all resident

    const refPass = await single.forward(x);
    const ref = refPass.output;
    single.close();
    const epOut = Buffer.concat(parts.map((p) => Buffer.from(p)));
    const result = {
      world,
      placement: mode === 'balanced' ? 'balanced' : 'contiguous',
      mode,
      backend: l.backend,
      transport: nccl ? 'nccl' : 'mpi',
      devices: stats.map((b) => JSON.parse(Buffer.from(b).toString()).device),
      epOutput: epOut.toString('base64'),
      singleOutput: Buffer.from(ref.buffer, ref.byteOffset, ref.byteLength).toString('base64'),
      singleDropped: refPass.stats.dropped,
      ranks: stats.map((b) => JSON.parse(Buffer.from(b).toString())),
      link,
    };
    const file = path.join(outDir, 'result.json');
    fs.writeFileSync(file + '.tmp', JSON.stringify(result));
    fs.renameSync(file + '.tmp', file);
  }
  ep.finalizeEp();
}

main().catch((e) => {
  const msg = `rank ${process.env.OMPI_COMM_WORLD_RANK}: ${e.stack || e}`;
  console.error(msg);
  // Also to a file: MPI_Abort may tear the job down before mpirun has forwarded this rank's stderr.
  fs.writeFileSync(path.join(outDir, `error.${process.env.OMPI_COMM_WORLD_RANK}.txt`), msg);
  ep.abortEp(1);
});
