#!/usr/bin/env node
// benny suite: end-to-end forward() from JavaScript (copy in, native pass, copy out, promise) at
// the OLMoE shape (H=2048 F=1024 E=64 k=8), T = 1, 16, 256, 2 threads. Unlike bench/run.js (native
// timers, ceilings, accuracy) this is the time a JS caller sees. `node bench/forward.benny.js`
// (BENCH_DTYPE=f32|bf16|int8|int4, default f32); results also in bench/results/forward-<dtype>.*
'use strict';
const path = require('path');
const b = require('benny');

function loadEngine() {
  const root = path.resolve(__dirname, '..');
  try {
    const lib = require(path.join(root, 'dist'));
    return (o) => lib.createMoeLayer(o);
  } catch {
    const addon = require(path.join(root, 'build', 'Release', 'moecap.node'));
    return (o) => addon.createLayer(o);
  }
}

const { gaussian } = require('./inputs');

async function main() {
  const dtype = process.env.BENCH_DTYPE || 'f32';
  const H = 2048;
  const layer = await loadEngine()({ hidden: H, intermediate: 1024, experts: 64, topK: 8, dtype, threads: 2, weights: { seed: 1234 } });
  const cases = [1, 16, 256].map((T) => {
    const xs = Array.from({ length: 8 }, (_, i) => gaussian(T * H, 17 + 31 * i + T));
    let i = 0;
    return b.add(
      `OLMoE ${dtype} forward T=${T}`,
      async () => {
        await layer.forward(xs[i++ % xs.length]);
      },
      { minSamples: 5, maxTime: T === 256 ? 6 : 3 },
    );
  });
  await b.suite(
    `moecap forward, OLMoE shape, ${dtype}, 2 threads`,
    ...cases,
    b.cycle(),
    b.complete((summary) => {
      for (const r of summary.results) console.log(`  ${r.name}: ${(1000 / r.ops).toFixed(3)} ms/pass (mean, ±${r.margin}%, ${r.samples} samples)`);
    }),
    b.save({ file: `forward-${dtype}`, folder: path.join(__dirname, 'results'), format: 'json' }),
  );
  layer.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
