#!/usr/bin/env node
// Offload benchmark (not a test): a 4-layer model at the OLMoE-1B-7B shape (H 2048, F 1024,
// 64 experts, top-8), experts in weights files read cold (page cache dropped, and dropped again
// after every read), decode T=1/16 and prefill T=256, resident fraction 100/50/25/12.5 %, uniform
// and Zipf-skewed routing (selection bias −α·ln(rank), α = 1). Prints one row per configuration;
// every figure is measured in this run (see the column notes at the end).
//
//   node bench/offload.js [--dtype bf16] [--layers 4] [--dir /tmp/moecap-bench] [--quick]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const native = require('node-gyp-build')(path.join(__dirname, '..')); // build/ or prebuilds/

const args = process.argv.slice(2);
const arg = (name, def) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : def;
};
const quick = args.includes('--quick');
const dtype = arg('dtype', 'bf16');
const LAYERS = +arg('layers', 4);
const dir = arg('dir', path.join(os.tmpdir(), 'moecap-offload-bench'));
const SHAPE = { hidden: 2048, intermediate: 1024, experts: 64, topK: 8, dtype, weights: { seed: 2024 } };
const E = SHAPE.experts;
fs.mkdirSync(dir, { recursive: true });
const prefix = path.join(dir, `olmoe-${dtype}`);

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}
// Tokens ~ N(0, 1.28²) (Irwin–Hall of 4 uniforms): the seeded router's logits then have std ≈ 1.28,
// the std of a Gumbel(1), so adding −α·ln(rank) makes top-1 picks roughly ∝ rank^−α (Gumbel-max).
const SIGMA = 1.28;
function tokens(T, seed) {
  const r = rng(seed),
    x = new Float32Array(T * SHAPE.hidden);
  for (let i = 0; i < x.length; i++) x[i] = (r() + r() + r() + r() - 2) * Math.sqrt(3) * SIGMA;
  return x;
}
// Zipf over experts: expert e has rank e+1 under a fixed shuffle, bias −α·ln(rank) on selection.
function zipfBias(alpha) {
  const r = rng(77),
    order = Array.from({ length: E }, (_, i) => i);
  for (let i = E - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const b = new Float32Array(E);
  order.forEach((e, rank) => (b[e] = -alpha * Math.log(rank + 1)));
  return b;
}
// Share of routed assignments that land on the 16 most used experts (a 25 % cache's ideal hit rate),
// measured by routing 512 tokens through layer 0's router (same seed → same router).
async function top16Share(bias) {
  const l = await native.createLayer({ ...SHAPE, intermediate: 16, ...(bias ? { selectionBias: bias } : {}) });
  const c = Array.from((await l.route(tokens(512, 4242))).stats.expertCounts).sort((a, b) => b - a);
  l.close();
  return c.slice(0, 16).reduce((a, b) => a + b, 0) / c.reduce((a, b) => a + b, 0);
}
// Zipf(α = 1) popularity puts H(16)/H(64) of the assignments on the top 16 ranks.
const harmonic = (n) => Array.from({ length: n }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b, 0);
const ZIPF_TOP16 = harmonic(16) / harmonic(E);

// Cold sequential read of a weights file: drop its cache, then read it front to back.
function coldSequentialRead(model, file, limit = Infinity) {
  model.dropCache();
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(16 << 20);
  let total = 0,
    n;
  const t0 = process.hrtime.bigint();
  while (total < limit && (n = fs.readSync(fd, buf, 0, buf.length, total)) > 0) total += n;
  const s = Number(process.hrtime.bigint() - t0) * 1e-9;
  fs.closeSync(fd);
  model.dropCache();
  return { bytes: total, seconds: s, bytesPerSecond: total / s };
}

// Cold reads of whole experts at their file offsets (the access pattern of the cache, one at a
// time, no readahead hint): the device's rate for this pattern, next to the sequential one.
function coldExpertReads(model, files, count = 48) {
  model.dropCache();
  const fds = files.map((f) => fs.openSync(f, 'r'));
  const head = Buffer.alloc(88 + 24 * E);
  fs.readSync(fds[0], head, 0, head.length, 0);
  const size = Number(head.readBigUInt64LE(88 + 8));
  const buf = Buffer.allocUnsafe(size);
  let total = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const fd = fds[i % fds.length],
      e = (i * 37) % E;
    fs.readSync(fd, head, 0, 24, 88 + 24 * e);
    const off = Number(head.readBigUInt64LE(0));
    for (let got = 0; got < size;) {
      const n = fs.readSync(fd, buf, got, size - got, off + got);
      if (n <= 0) break;
      got += n;
      total += n;
    }
  }
  const s = Number(process.hrtime.bigint() - t0) * 1e-9;
  fds.forEach((fd) => fs.closeSync(fd));
  model.dropCache();
  return total / s;
}

const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(d));
const GB = 1e9;

async function measure(label, opts, T, passes, warm, profile) {
  const m = await native.createModel({ ...SHAPE, layers: LAYERS, ...opts });
  let seed = 1000;
  // Warm-up to a steady cache: one 64-token pass (touches nearly every expert under uniform
  // routing, so a 100 % cache is full), then passes of the measured shape (the static profile).
  if (T < 64) await m.forward(tokens(64, seed++));
  for (let i = 0; i < warm; i++) await m.forward(tokens(T, seed++));
  // The device's cold sequential rate around this row (disks here are shared and noisy): the
  // first 256 MiB of the layer-0 weights file, read the way this cache reads (O_DIRECT when the
  // layer does, info().offload.directIo; native 8 MiB reads; else buffered with the page cache
  // dropped), once before and once after the row's passes; the row is compared with their mean.
  const direct = opts.offload ? m.info().offload[0].directIo : false;
  const seqRead = async () =>
    direct
      ? (await native.measureFileRead(`${prefix}.0`, { bytes: 256 << 20, repeats: 1, direct: true })).bandwidth.median
      : coldSequentialRead(m, `${prefix}.0`, 256 << 20).bytesPerSecond;
  const seqBefore = opts.offload ? await seqRead() : null;
  if (profile) m.pinStatic();
  if (opts.offload) {
    m.resetOffloadStats();
    if (opts.offload.coldCache) m.dropCache();
  }
  let wall = 0,
    compute = 0,
    io = 0,
    stall = 0,
    bytes = 0;
  for (let i = 0; i < passes; i++) {
    const r = await m.forward(tokens(T, seed++));
    wall += r.stats.timeNs;
    compute += r.stats.computeNs;
    if (r.stats.offload) {
      io += r.stats.offload.ioNs;
      stall += r.stats.offload.stallNs;
      bytes += r.stats.offload.bytesRead;
    }
  }
  const s = opts.offload ? m.offloadStats() : null;
  const seqAfter = opts.offload ? await seqRead() : null;
  const seqNow = opts.offload ? (seqBefore + seqAfter) / 2 : null;
  m.close();
  return {
    label,
    T,
    passes,
    msPerPass: wall / passes / 1e6,
    computeMsPerPass: compute / passes / 1e6,
    stallMsPerPass: stall / passes / 1e6,
    hitRate: s ? s.hitRate : null,
    tierBytesPerSecond: io > 0 ? bytes / (io * 1e-9) : null, // while the I/O thread read
    wallBytesPerSecond: wall > 0 ? bytes / (wall * 1e-9) : null, // over the whole pass
    bytesPerPass: bytes / passes,
    overlap: wall > 0 ? Math.max(io, compute) / wall : null,
    prediction: s ? s.prediction.accuracy : null,
    prefetchUsed: s ? s.prefetchUsed : null,
    prefetchIssued: s ? s.prefetchIssued : null,
    seqNow,
    seqBefore,
    seqAfter,
    directIo: direct,
  };
}

(async () => {
  const info = native.systemInfo();
  console.log(`# moecap offload bench — ${new Date().toISOString()}`);
  console.log(
    `shape: ${LAYERS} layers × OLMoE (H ${SHAPE.hidden}, F ${SHAPE.intermediate}, E ${E}, top-${SHAPE.topK}), dtype ${dtype}, ` +
      `isa ${info.bestIsa}, ${info.hardwareThreads} threads; files ${prefix}.<layer>`,
  );
  const t0 = Date.now();
  const probeOptions = { ...SHAPE, layers: LAYERS, offload: { capacity: 1, path: prefix, coldCache: true } };
  let probe;
  try {
    probe = await native.createModel(probeOptions);
  } catch (e) {
    // Files of an earlier build's layout (or of other weights) are refused by name: write them again.
    if (!/version \d+, this build reads version|written (for another shape|from other weights)/.test(String(e.message))) throw e;
    console.log(`existing weight files refused (${e.message}); writing them again`);
    for (let l = 0; l < LAYERS; l++) fs.rmSync(`${prefix}.${l}`, { force: true });
    probe = await native.createModel(probeOptions);
  }
  const pinfo = probe.info();
  console.log(
    `expert ${(pinfo.expertBytes / 1e6).toFixed(2)} MB, file ${(pinfo.offload[0].fileBytes / GB).toFixed(3)} GB/layer; ` +
      `files ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (written now or reused)`,
  );
  const seq = [0, 1].map(() => coldSequentialRead(probe, `${prefix}.0`));
  const warmSeq = (() => {
    const fd = fs.openSync(`${prefix}.0`, 'r');
    const b = Buffer.allocUnsafe(16 << 20);
    let t = 0,
      n;
    const a = process.hrtime.bigint();
    while ((n = fs.readSync(fd, b, 0, b.length, t)) > 0) t += n;
    fs.closeSync(fd);
    return t / (Number(process.hrtime.bigint() - a) * 1e-9);
  })();
  probe.dropCache();
  const seqBw = Math.max(...seq.map((s) => s.bytesPerSecond));
  console.log(
    `cold sequential read of ${prefix}.0 (16 MiB reads): ${seq.map((s) => (s.bytesPerSecond / GB).toFixed(2)).join(', ')} GB/s ` +
      `(best ${(seqBw / GB).toFixed(2)}); same file warm (page cache): ${(warmSeq / GB).toFixed(2)} GB/s`,
  );
  const layerFiles = Array.from({ length: LAYERS }, (_, l) => `${prefix}.${l}`);
  const expertRead = [0, 1].map(() => coldExpertReads(probe, layerFiles));
  console.log(`cold reads of 48 whole experts at their offsets (4 files, one at a time): ` + `${expertRead.map((v) => (v / GB).toFixed(2)).join(', ')} GB/s`);
  probe.close();

  // The engine's selectionBias is added to the router *scores* (softmax probabilities ≈ 1/64), not
  // to the logits, so −1·ln(rank) there would make routing deterministic. "zipf" instead uses
  // −β·ln(rank) with β found here so that assignment popularity matches Zipf(1) on the top 16
  // experts (H16/H64 of all assignments).
  let beta = 1,
    best = Infinity;
  const shares = {};
  for (const b of [0.05, 0.04, 0.03, 0.025, 0.02, 0.015, 0.01, 0.005]) {
    const sh = await top16Share(zipfBias(b));
    shares[b] = sh;
    if (Math.abs(sh - ZIPF_TOP16) < best) {
      best = Math.abs(sh - ZIPF_TOP16);
      beta = b;
    }
  }
  const uniformShare = await top16Share(undefined);
  console.log(
    `top-16 share of assignments: uniform ${uniformShare.toFixed(3)}; with −β·ln(rank): ` +
      Object.entries(shares)
        .map(([b, v]) => `β=${b}: ${v.toFixed(3)}`)
        .join(', ') +
      `; Zipf(1) target ${ZIPF_TOP16.toFixed(3)} → β = ${beta}`,
  );
  const ROUTING = { uniform: undefined, zipf: zipfBias(beta) };
  const rows = [];
  const all = [
    [1, 16, 8],
    [16, 8, 4],
    [256, 2, 1],
  ];
  const only = arg('tokens', null); // e.g. --tokens 1,16
  const cases = quick ? [[1, 6, 4]] : only ? all.filter(([T]) => only.split(',').map(Number).includes(T)) : all;
  const fractions = quick ? [1, 0.25] : [1, 0.5, 0.25, 0.125];
  const header =
    '| T | routing | resident | policy | ms/pass | all-resident ms | hit rate | MB read/pass | stall ms | GB/s (io busy) | GB/s (wall) | seq GB/s now | wall/seq | overlap | next-layer pred. |';
  const lines = [header, '|' + '---|'.repeat(15)];
  const print = (r, routing, frac, policy, base) => {
    const l =
      `| ${r.T} | ${routing} | ${frac * 100}% | ${policy} | ${fmt(r.msPerPass)} | ${fmt(base)} | ${fmt(r.hitRate, 3)} | ${fmt(r.bytesPerPass / 1e6, 0)} | ${fmt(r.stallMsPerPass)} | ` +
      `${fmt(r.tierBytesPerSecond && r.tierBytesPerSecond / GB, 2)} | ${fmt(r.wallBytesPerSecond / GB, 2)} | ${fmt(r.seqNow / GB, 2)} | ` +
      `${r.bytesPerPass > 0 ? fmt((100 * r.wallBytesPerSecond) / r.seqNow, 0) + '%' : '–'} | ${fmt(r.overlap, 2)} | ${fmt(r.prediction, 2)} |`;
    lines.push(l);
    console.log(l);
  };
  console.log(header);
  for (const [T, passes, warm] of cases) {
    for (const [routing, bias] of Object.entries(ROUTING)) {
      const base = { ...(bias ? { selectionBias: bias } : {}) };
      const resident = await measure('resident', base, T, passes, warm);
      for (const frac of routing === 'zipf-logit' ? [0.25] : fractions) {
        const policies = frac === 0.25 && routing !== 'uniform' ? ['lru', 'lfu', 'lfru', 'static'] : ['lru'];
        for (const policy of policies) {
          const capacity = Math.max(1, Math.round(frac * E));
          const off = { capacity, policy, prefetch: true, path: prefix, coldCache: true };
          // Static: the warm-up passes are the profile run (pinStatic after them).
          const r = await measure(`${policy}`, { ...base, offload: off }, T, passes, warm, policy === 'static');
          rows.push({ routing, fraction: frac, policy, residentMsPerPass: resident.msPerPass, ...r });
          print(r, routing, frac, policy, resident.msPerPass);
        }
      }
      if (T === 1) {
        // the same decode without prefetch, at 25 %: what overlap buys, and (skewed)
        // each policy on its own, without next-layer prefetch filling the cache with predictions.
        for (const policy of routing === 'zipf' ? ['lru', 'lfu', 'lfru', 'static'] : ['lru']) {
          const r = await measure(
            `${policy}-noprefetch`,
            { ...base, offload: { capacity: 16, policy, prefetch: false, path: prefix, coldCache: true } },
            T,
            passes,
            warm,
            policy === 'static',
          );
          rows.push({ routing, fraction: 0.25, policy: `${policy} (no prefetch)`, residentMsPerPass: resident.msPerPass, ...r });
          print(r, routing, 0.25, `${policy}, no prefetch`, resident.msPerPass);
        }
      }
    }
  }
  const out = {
    date: new Date().toISOString(),
    shape: SHAPE,
    zipfBeta: beta,
    top16Shares: shares,
    uniformShare,
    layers: LAYERS,
    system: info,
    coldSequentialRead: seq,
    coldExpertReadBytesPerSecond: expertRead,
    warmSequentialBytesPerSecond: warmSeq,
    rows,
  };
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  const file = path.join(__dirname, 'results', `offload-${Date.now()}.json`);
  fs.writeFileSync(file, JSON.stringify(out, null, 1));
  console.log('\n' + lines.join('\n'));
  console.log(`\nresults: ${file}`);
  console.log(`columns: ms/pass = wall time of one ${LAYERS}-layer forward (mean of the measured passes, after warm-up);
resident-model ms = the same passes with every expert resident (no offload); stall = compute thread waiting on loads;
GB/s (io busy) = bytes read / time with at least one read in flight (the union over the I/O threads; with
buffered reads a readahead hint can start an expert early, so this can exceed the device rate; checksums are
checked on the compute thread); GB/s (wall) = bytes read / pass wall time;
seq GB/s now = cold sequential read of the first 256 MiB of the layer-0 file, the cache's read path (O_DIRECT
when it reads direct), mean of one read just before and one just after the row; wall/seq = their ratio;
overlap = max(io busy, compute) / wall; next-layer pred. =
|predicted ∩ used| / |used| distinct experts, layers 1..${LAYERS - 1}.`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
