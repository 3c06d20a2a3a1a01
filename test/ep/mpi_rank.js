// One rank of the mpirun test (test/ep/ep_mpi.test.ts): node test/ep/mpi_rank.js OUT_DIR [die]
// Every rank runs its share of an expert-parallel pass; rank 0 gathers the outputs, runs the
// single-process layer on the same weights and inputs, and writes OUT_DIR/result.json atomically.
// With `die`, rank 1 exits with code 3 mid-run (after building its share, before the pass).
'use strict';
const fs = require('fs');
const path = require('path');
const dist = path.resolve(__dirname, '..', '..', 'dist');
const { createMoeLayer } = require(path.join(dist, 'moe_layer'));
const ep = require(path.join(dist, 'ep'));

const [outDir, mode] = process.argv.slice(2);
const P = 2,
  T = 23,
  H = 64;
const layer = { hidden: H, intermediate: 40, experts: 7, topK: 2, threads: 1, poison: true, sharedExperts: { intermediate: 24 }, weights: { seed: 11 } };

function input() {
  const x = new Float32Array(T * H);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.731 + 0.2) * (1 + (i % 7) / 5);
  return x;
}

async function main() {
  const world = ep.initEp(P);
  const loads = mode === 'balanced' ? [9, 1, 1, 7, 3, 2, 5] : undefined;
  const opts = mode === 'balanced' ? { ranks: P, placement: 'balanced', redundant: 2, loads } : { ranks: P };
  const l = await ep.createEpLayer(layer, opts);
  if (mode === 'die' && world.rank === 1) process.exit(3);
  const x = input();
  const t0 = ep.rankFirstToken(T, P, world.rank),
    t1 = ep.rankFirstToken(T, P, world.rank + 1);
  const r = await l.forward(x.subarray(t0 * H, t1 * H));
  const link = await ep.calibrateLink();
  const parts = await l.gather(new Uint8Array(r.output.buffer, r.output.byteOffset, r.output.byteLength));
  const stats = await l.gather(Buffer.from(JSON.stringify({ ...r.stats, experts: Array.from(l.experts) })));
  if (world.rank === 0) {
    const single = await createMoeLayer(layer);
    const ref = (await single.forward(x)).output;
    single.close();
    const epOut = Buffer.concat(parts.map((p) => Buffer.from(p)));
    const result = {
      world,
      placement: mode === 'balanced' ? 'balanced' : 'contiguous',
      epOutput: epOut.toString('base64'),
      singleOutput: Buffer.from(ref.buffer, ref.byteOffset, ref.byteLength).toString('base64'),
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
  console.error(`rank ${process.env.OMPI_COMM_WORLD_RANK}: ${e.stack || e}`);
  ep.abortEp(1);
});
