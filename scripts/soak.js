#!/usr/bin/env node
// `npm run soak [-- --minutes N] [--only layer,offload,model,worker]`: a mixed workload for a while (default 60 minutes) — layers and
// models created, run, offloaded, closed, and worker_threads terminated while their calls are in
// flight — sampling this process's resident memory, open file descriptors (/proc/self/fd) and
// threads (/proc/self/status). Prints the least-squares slope of each per minute at the end, over
// the whole run and over its second half (after warm-up); a leak shows as a steady positive slope.
// Outside `npm test` (it runs for minutes); needs the built package (npm install / npm run build:ts).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Worker } = require('worker_threads');

const root = path.resolve(__dirname, '..');
const m = require(path.join(root, 'dist', 'index.js'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`soak: --${name} needs a positive number`);
    process.exit(2);
  }
  return v;
}
const minutes = arg('minutes', 60);
// --only layer,offload,model,worker: a subset of the workload (to find which part a slope comes from).
const onlyAt = process.argv.indexOf('--only');
const only = new Set(onlyAt >= 0 ? String(process.argv[onlyAt + 1]).split(',') : ['layer', 'offload', 'model', 'worker']);
const sampleSeconds = arg('sample-seconds', Math.max(1, Math.min(30, (minutes * 60) / 120)));

const SHAPE = { hidden: 256, intermediate: 128, experts: 16, topK: 4, threads: 2 };
const DTYPES = ['f32', 'bf16', 'int8', 'int4'];
const tokens = (T, seed) => Float32Array.from({ length: T * SHAPE.hidden }, (_, i) => Math.sin(i * 0.7 + seed));

function sample() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  return {
    t: Date.now(),
    rss: process.memoryUsage().rss,
    fds: fs.readdirSync('/proc/self/fd').length,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
  };
}

async function layerRound(i) {
  const layer = await m.createMoeLayer({ ...SHAPE, dtype: DTYPES[i % 4], weights: { seed: i } });
  const x = tokens(1 + (i % 17), i);
  await Promise.all([layer.forward(x), layer.forward(x), layer.route(x)]);
  await layer.reference(x.subarray(0, SHAPE.hidden));
  const pending = layer.forward(x);
  layer.close(); // closed with a pass in flight
  await pending;
}

async function offloadRound(i) {
  const layer = await m.createMoeLayer({
    ...SHAPE,
    dtype: i % 2 ? 'bf16' : 'int8',
    weights: { seed: i },
    offload: { capacity: 4, policy: ['lru', 'lfu', 'lfru'][i % 3], coldCache: i % 4 === 0 },
  });
  for (let r = 0; r < 4; r++) await layer.forward(tokens(1 + r * 3, i + r));
  layer.offloadStats();
  layer.close();
}

async function modelRound(i) {
  const model = await m.createMoeModel({ ...SHAPE, layers: 3, weights: { seed: i }, ...(i % 2 ? { offload: { capacity: { fraction: 0.5 } } } : {}) });
  await model.forward(tokens(4, i));
  model.close();
}

const WORKER = `
const { parentPort, workerData } = require('worker_threads');
const m = require(workerData.index);
(async () => {
  const l = await m.createMoeLayer({ ...workerData.shape, weights: { seed: 1 } });
  const x = new Float32Array(32 * workerData.shape.hidden).fill(0.25);
  for (;;) { const p = l.forward(x); parentPort.postMessage('go'); await p; }
})();
`;

function workerRound(i) {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { index: path.join(root, 'dist', 'index.js'), shape: SHAPE } });
    w.once('error', reject);
    w.once('message', () => setTimeout(() => w.terminate().then(() => resolve(), reject), i % 5));
  });
}

function slope(points, key) {
  // Least squares of key against minutes.
  const n = points.length;
  if (n < 2) return NaN;
  const t0 = points[0].t;
  const xs = points.map((p) => (p.t - t0) / 60000),
    ys = points.map((p) => p[key]);
  const mx = xs.reduce((a, b) => a + b, 0) / n,
    my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0,
    sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : NaN;
}

async function main() {
  const end = Date.now() + minutes * 60000;
  const samples = [sample()];
  const counts = { layer: 0, offload: 0, model: 0, worker: 0 };
  let next = Date.now() + sampleSeconds * 1000;
  console.log(`soak: ${minutes} min, sampling every ${sampleSeconds} s (pid ${process.pid}, ${os.cpus().length} CPUs)`);
  for (let i = 0; Date.now() < end; i++) {
    if (only.has('layer')) {
      await layerRound(i);
      counts.layer++;
    }
    if (only.has('offload') && i % 2 === 0) {
      await offloadRound(i);
      counts.offload++;
    }
    if (only.has('model') && i % 3 === 0) {
      await modelRound(i);
      counts.model++;
    }
    if (only.has('worker') && i % 4 === 0) {
      await workerRound(i);
      counts.worker++;
    }
    if (Date.now() >= next) {
      if (global.gc) global.gc();
      const s = sample();
      samples.push(s);
      next += sampleSeconds * 1000;
      const min = ((s.t - samples[0].t) / 60000).toFixed(1);
      console.log(`  ${min.padStart(6)} min  rss ${(s.rss / 2 ** 20).toFixed(1)} MiB  fds ${s.fds}  threads ${s.threads}`);
    }
  }
  const half = samples.slice(Math.floor(samples.length / 2));
  console.log(`rounds: ${counts.layer} layer, ${counts.offload} offload, ${counts.model} model, ${counts.worker} worker terminations`);
  console.log('least-squares slope per minute   whole run       second half');
  const row = (label, key, scale, unit) =>
    console.log(
      `  ${label.padEnd(30)} ${(slope(samples, key) / scale).toFixed(3).padStart(9)} ${unit.padEnd(6)} ${(slope(half, key) / scale).toFixed(3).padStart(9)} ${unit}`,
    );
  row('resident memory', 'rss', 2 ** 20, 'MiB');
  row('open file descriptors', 'fds', 1, 'fds');
  row('threads', 'threads', 1, 'thr');
  const first = samples[0],
    last = samples[samples.length - 1];
  console.log(
    `first → last sample: rss ${(first.rss / 2 ** 20).toFixed(1)} → ${(last.rss / 2 ** 20).toFixed(1)} MiB, fds ${first.fds} → ${last.fds}, threads ${first.threads} → ${last.threads}`,
  );
}

main().catch((e) => {
  console.error('soak:', e);
  process.exit(1);
});
