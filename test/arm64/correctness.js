#!/usr/bin/env node
// Correctness of the native addon without jest, for an arm64 build run under qemu-aarch64 (see
// scripts/test-arm64.sh; any node and any addon work: the path is argv[2], default
// build-arm64/Release/moecap.node). Plain JS throughout, so the arm64 node runs it as is.
//   - every weight dtype on every ISA the CPU offers (neon and generic on arm64) against an fp64
//     reference written here, at odd sizes (partial panels and quantisation blocks), random
//     inputs, poisoned outputs; mxfp4 and fp8 with weights snapped onto their grids
//     (grid_snap.js), so the reference of the master weights is that of the stored values;
//   - the router (ids and weights, softmax and sigmoid) against the same reference;
//   - a token alone equals it in a batch bit for bit, and repeated passes are identical;
//   - neon equals the portable kernels bit for bit where both do exact integer / exact-product
//     work (int8, int4, mxfp4 always; bf16 where the widening kernel runs, i.e. without FEAT_BF16);
//   - an offloaded layer equals the resident one bit for bit.
// Last line: "N passed, M failed"; exit status 1 on any failure.
'use strict';
const path = require('path');
const os = require('os');
const fs = require('fs');

const addonPath = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', 'build-arm64', 'Release', 'moecap.node'));
const addon = require(addonPath);
const { snapWeights } = require('./grid_snap.js');

let passed = 0,
  failed = 0;
function check(name, ok, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`);
  }
}

// ---- random inputs (xorshift, Box-Muller; never zeros) ----
function rng(seed) {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}
function gaussian(n, seed, std = 1) {
  const u = rng(seed),
    a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = std * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return a;
}
function makeWeights(c, seed) {
  const { hidden: H, intermediate: F, experts: E } = c;
  return {
    router: gaussian(E * H, seed + 1, 1 / Math.sqrt(H)),
    gate: gaussian(E * F * H, seed + 2, 1 / Math.sqrt(H)),
    up: gaussian(E * F * H, seed + 3, 1 / Math.sqrt(H)),
    down: gaussian(E * H * F, seed + 4, 1 / Math.sqrt(F)),
  };
}
function relL2(a, ref) {
  let d = 0,
    r = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (a[i] - ref[i]) ** 2;
    r += ref[i] ** 2;
  }
  return Math.sqrt(d / r);
}
function bitwiseEqual(a, b) {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
    ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

// ---- fp64 reference: token-choice routing, then Σ weight · down(silu(gate·x) ⊙ up·x) ----
function refRoute(c, w, x) {
  const { hidden: H, experts: E, topK: k } = c,
    T = x.length / H;
  const ids = new Int32Array(T * k),
    weights = new Float64Array(T * k);
  for (let t = 0; t < T; t++) {
    const logits = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      let d = 0;
      for (let h = 0; h < H; h++) d += x[t * H + h] * w.router[e * H + h];
      logits[e] = d;
    }
    let scores;
    if (c.scoring === 'softmax') {
      const m = Math.max(...logits),
        ex = logits.map((l) => Math.exp(l - m)),
        s = ex.reduce((a, b) => a + b, 0);
      scores = ex.map((v) => v / s);
    } else {
      scores = logits.map((l) => 1 / (1 + Math.exp(-l)));
    }
    const sel = Float64Array.from(scores);
    let sum = 0;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) if (sel[e] !== -Infinity && (best < 0 || sel[e] > sel[best])) best = e;
      ids[t * k + j] = best;
      weights[t * k + j] = scores[best];
      sum += scores[best];
      sel[best] = -Infinity;
    }
    for (let j = 0; j < k; j++) {
      if (c.renormalize) weights[t * k + j] /= sum + 1e-20;
      weights[t * k + j] *= c.routedScalingFactor ?? 1;
    }
  }
  return { ids, weights };
}
function refForward(c, w, x, routing) {
  const { hidden: H, intermediate: F, topK: k } = c,
    T = x.length / H;
  const out = new Float64Array(T * H),
    a = new Float64Array(F);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const e = routing.ids[t * k + j],
        go = e * F * H,
        dof = e * H * F;
      for (let f = 0; f < F; f++) {
        let g = 0,
          u = 0;
        for (let h = 0; h < H; h++) {
          g += x[t * H + h] * w.gate[go + f * H + h];
          u += x[t * H + h] * w.up[go + f * H + h];
        }
        a[f] = (g / (1 + Math.exp(-g))) * u;
      }
      for (let h = 0; h < H; h++) {
        let d = 0;
        for (let f = 0; f < F; f++) d += w.down[dof + h * F + f] * a[f];
        out[t * H + h] += routing.weights[t * k + j] * d;
      }
    }
  }
  return out;
}

// Relative L2 bounds pooled over the tokens of one shape (those of test/kernels/kernels_dtypes.test.ts;
// mxfp4 against its stored values as test/kernels/kernels_mx_fp8.test.ts; fp8, fp32 accumulation of
// exact weights over sums of at most 161 here, tighter than that suite's 1e-5 for sums of 1100).
const BOUND = { f32: 7e-7, bf16: 9e-3, int8: 2e-2, int4: 1.5e-1, mxfp4: 2e-2, fp8: 1e-6 };
const DTYPES = ['f32', 'bf16', 'int8', 'int4', 'mxfp4', 'fp8'];
const ON_GRID = new Set(['mxfp4', 'fp8']);
const TOKENS = [1, 5, 33];
const SHAPES = [
  { hidden: 72, intermediate: 40, experts: 7, topK: 3 },
  { hidden: 100, intermediate: 48, experts: 5, topK: 2 },
];
// mxfp4 and fp8 also at a partial second fp8 block (161 = 128 + 33) and an odd mxfp4 block count (99: 4).
const GRID_SHAPES = [...SHAPES, { hidden: 161, intermediate: 99, experts: 4, topK: 2 }];
// The master weights of a layer: random, and for mxfp4/fp8 snapped onto the format's grid.
function layerWeights(cfg, seed, dtype) {
  const w = makeWeights(cfg, seed);
  return ON_GRID.has(dtype) ? snapWeights(w, cfg.hidden, cfg.intermediate, dtype) : w;
}

// CPU features for the bf16 cross-ISA check: /proc/cpuinfo (qemu-user may not emulate it), else
// MOECAP_TEST_CPU_FEATURES (set by scripts/test-arm64.sh from the qemu CPU model).
function cpuHasBf16() {
  if (process.env.MOECAP_TEST_CPU_FEATURES !== undefined) return /\bbf16\b/.test(process.env.MOECAP_TEST_CPU_FEATURES);
  try {
    const m = /^Features\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return /\bbf16\b/.test(m[1]);
  } catch {
    /* no cpuinfo */
  }
  return true; // unknown: skip the bitwise bf16 comparison
}

async function kernels(isa, shape, dtype) {
  const cfg = { ...shape, scoring: 'softmax', renormalize: true };
  const weights = layerWeights(cfg, 5 + shape.hidden, dtype);
  const layer = await addon.createLayer({ ...cfg, dtype, isa, threads: 2, poison: true, weights });
  const tag = `${isa} ${dtype} H=${shape.hidden}`;
  check(`${tag}: isa`, layer.info().isa === isa, layer.info().isa);
  const outs = [],
    refs = [];
  for (const T of TOKENS) {
    const H = shape.hidden,
      x = gaussian(T * H, 1000 + T * 7 + H);
    const r = await layer.forward(x);
    const routing = refRoute(cfg, weights, x);
    check(
      `${tag} T=${T}: expert ids = reference`,
      r.expertIds.every((v, i) => v === routing.ids[i]),
    );
    const ref = refForward(cfg, weights, x, routing);
    for (const v of r.output) outs.push(v);
    for (const v of ref) refs.push(v);
    check(`${tag} T=${T}: finite`, r.output.every(Number.isFinite));
    check(`${tag} T=${T}: repeat bitwise`, bitwiseEqual((await layer.forward(x)).output, r.output));
    let alone = true;
    for (let t = 0; t < T; t++) {
      const a = await layer.forward(x.slice(t * H, (t + 1) * H));
      alone = alone && bitwiseEqual(a.output, r.output.subarray(t * H, (t + 1) * H));
    }
    check(`${tag} T=${T}: alone = in batch, bitwise`, alone);
  }
  const err = relL2(outs, refs);
  check(`${tag}: rel L2 ${err.toExponential(2)} < ${BOUND[dtype]}`, err < BOUND[dtype] && err > 0);
  layer.close();
}

// E4M3 code → value (bias 7, subnormals k·2^-9; 0x7F/0xFF are NaN and not used here).
function e4m3Value(c) {
  const e = (c >> 3) & 15,
    m = c & 7,
    v = e ? (1 + m / 8) * 2 ** (e - 7) : m * 2 ** -9;
  return c & 0x80 ? -v : v;
}

// fp8 decode of every code: the expert rows hold, after a ±448 at input 0 (so the packer's scale
// is exactly s), E4M3 values × s cycling through `codes`; the activation at input 0 is small, so
// the dot products are carried by those codes. Once over every finite code, once over the
// subnormals and the smallest normals only (where a decode that flushed or misplaced them would
// be off by a large fraction of the output), against the fp64 reference of these exact weights.
async function fp8EveryCode(isa) {
  const all = [...Array(256).keys()].filter((c) => (c & 0x7f) !== 0x7f);
  const small = all.filter((c) => (c & 0x7f) < 0x10);
  const shape = { hidden: 131, intermediate: 37, experts: 1, topK: 1, scoring: 'softmax', renormalize: true };
  for (const [name, codes] of [
    ['every finite code', all],
    ['subnormals and the smallest normals', small],
  ]) {
    const w = makeWeights(shape, 808);
    let n = 0;
    const fill = (m, K) => {
      const s = 2 ** -12 * (1 + (n % 7) / 8);
      for (let r = 0; r < m.length / K; r++)
        for (let k = 0; k < K; k++) m[r * K + k] = (k % 128 === 0 ? (r % 2 ? -448 : 448) : e4m3Value(codes[n++ % codes.length])) * s;
    };
    fill(w.gate, shape.hidden);
    fill(w.up, shape.hidden);
    fill(w.down, shape.intermediate);
    const layer = await addon.createLayer({ ...shape, dtype: 'fp8', isa, threads: 2, poison: true, weights: w });
    const x = gaussian(5 * shape.hidden, 809);
    for (let t = 0; t < 5; t++) for (let k = 0; k < shape.hidden; k += 128) x[t * shape.hidden + k] *= 1e-4;
    const r = await layer.forward(x);
    const err = relL2(r.output, refForward(shape, w, x, refRoute(shape, w, x)));
    check(`${isa} fp8 ${name}: rel L2 ${err.toExponential(2)} < ${BOUND.fp8}`, err < BOUND.fp8 && err > 0);
    layer.close();
  }
}

async function sameAsGeneric(dtype) {
  const shape = { hidden: 67, intermediate: 45, experts: 1, topK: 1 };
  const cfg = { ...shape, scoring: 'softmax', renormalize: true };
  const weights = makeWeights(cfg, 71 + shape.hidden);
  const a = await addon.createLayer({ ...cfg, dtype, isa: 'neon', threads: 2, poison: true, weights });
  const g = await addon.createLayer({ ...cfg, dtype, isa: 'generic', threads: 2, poison: true, weights });
  for (const T of TOKENS) {
    const x = gaussian(T * shape.hidden, 3000 + T);
    const ra = await a.forward(x),
      rg = await g.forward(x);
    check(`neon ${dtype} T=${T}: bitwise = generic`, bitwiseEqual(ra.output, rg.output));
  }
  a.close();
  g.close();
}

async function router() {
  const shape = { hidden: 61, intermediate: 16, experts: 9, topK: 3 };
  for (const opts of [
    { scoring: 'softmax', renormalize: true },
    { scoring: 'sigmoid', renormalize: false, routedScalingFactor: 2.5 },
  ]) {
    const cfg = { ...shape, ...opts };
    const weights = makeWeights(cfg, 211);
    const layer = await addon.createLayer({ ...cfg, dtype: 'f32', threads: 2, weights });
    const x = gaussian(13 * shape.hidden, 77);
    const r = await layer.route(x);
    const ref = refRoute(cfg, weights, x);
    let worst = 0;
    for (let i = 0; i < ref.weights.length; i++) worst = Math.max(worst, Math.abs(r.expertWeights[i] - ref.weights[i]) / Math.abs(ref.weights[i]));
    check(
      `router ${opts.scoring}: ids`,
      r.expertIds.every((v, i) => v === ref.ids[i]),
    );
    check(`router ${opts.scoring}: weights rel err ${worst.toExponential(2)} < 1e-5`, worst < 1e-5);
    layer.close();
  }
}

async function offload(dtype) {
  const shape = { hidden: 72, intermediate: 40, experts: 8, topK: 2, scoring: 'softmax', renormalize: true };
  const weights = makeWeights(shape, 404);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-arm64-'));
  const resident = await addon.createLayer({ ...shape, dtype, threads: 2, weights });
  const off = await addon.createLayer({ ...shape, dtype, threads: 2, weights, offload: { capacity: 2, path: path.join(dir, 'experts.bin') } });
  let same = true;
  for (let pass = 0; pass < 3; pass++) {
    const x = gaussian(9 * shape.hidden, 500 + pass);
    same = same && bitwiseEqual((await off.forward(x)).output, (await resident.forward(x)).output);
  }
  check(`offload ${dtype}: bitwise = resident`, same);
  off.close();
  resident.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

// The ISA chosen by name: 'auto' takes the best, MOECAP_ISA (read at each createLayer, so setting
// it in process.env reaches the addon) and the isa option name any supported one, and one this
// CPU cannot run is refused (ERR_INVALID_OPTION) with the list of those it runs.
async function isaChoice(info) {
  const cfg = { hidden: 40, intermediate: 24, experts: 4, topK: 2, weights: { seed: 3 } };
  const isaOf = async (opts) => {
    const layer = await addon.createLayer({ ...cfg, ...opts });
    const isa = layer.info().isa;
    layer.close();
    return isa;
  };
  const refusal = async (opts) => {
    // the addon refuses synchronously or by rejection
    try {
      (await addon.createLayer({ ...cfg, ...opts })).close();
      return null;
    } catch (e) {
      return e;
    }
  };
  check(`isa 'auto' = best (${info.bestIsa})`, (await isaOf({ isa: 'auto' })) === info.bestIsa);
  try {
    for (const isa of info.supportedIsas) {
      check(`isa: '${isa}' runs ${isa}`, (await isaOf({ isa })) === isa);
      process.env.MOECAP_ISA = isa;
      check(`MOECAP_ISA=${isa} runs ${isa}`, (await isaOf({})) === isa);
    }
    const runs = `it runs: ${info.supportedIsas.join(', ')}`;
    for (const isa of ['avx512', 'avx2', 'neon'].filter((i) => !info.supportedIsas.includes(i))) {
      delete process.env.MOECAP_ISA;
      const e = await refusal({ isa });
      check(`isa: '${isa}' refused, naming what this CPU runs`, e && e.code === 'ERR_INVALID_OPTION' && e.message.endsWith(runs), e && e.message);
      process.env.MOECAP_ISA = isa;
      const v = await refusal({});
      check(`MOECAP_ISA=${isa} refused, naming the variable`, v && v.code === 'ERR_INVALID_OPTION' && /^MOECAP_ISA '/.test(v.message), v && v.message);
    }
  } finally {
    delete process.env.MOECAP_ISA;
  }
}

// The arithmetic ceilings' loops of the best ISA run and give positive figures; on arm64 the dot
// loops exist exactly where the CPU has the unit (bfdot: FEAT_BF16, sdot: FEAT_DotProd). Under
// emulation only that they run is checked, the figures mean nothing.
async function ceilings(info) {
  const c = await addon.calibrate({ isa: info.bestIsa, readBytes: 8 << 20, repeats: 1, threads: 2 });
  const g = (m) => (m ? (m.median / 1e9).toFixed(2) : 'none');
  console.log(
    `calibrate ${c.isa} (emulated: figures meaningless): read ${g(c.readBandwidth)} GB/s, fp32 ${g(c.fp32Flops)}, ` +
      `bf16 ${g(c.bf16Flops)} GFLOP/s, int8 ${g(c.int8Ops)} GOP/s`,
  );
  check(`calibrate ${c.isa}: isa`, c.isa === info.bestIsa, c.isa);
  check(`calibrate ${c.isa}: read bandwidth > 0`, c.readBandwidth.median > 0);
  check(`calibrate ${c.isa}: fp32 FMA loop > 0`, c.fp32Flops && c.fp32Flops.median > 0);
  if (process.arch !== 'arm64') return;
  const feats = process.env.MOECAP_TEST_CPU_FEATURES;
  const has = (f) => (feats === undefined ? null : new RegExp(`\\b${f}\\b`).test(feats));
  for (const [name, m, feat] of [
    ['bf16 bfdot', c.bf16Flops, 'bf16'],
    ['int8 sdot', c.int8Ops, 'dotprod'],
  ]) {
    if (m) check(`calibrate neon: ${name} loop > 0`, m.median > 0 && m.min > 0);
    if (has(feat) !== null) check(`calibrate neon: ${name} loop ${has(feat) ? 'present' : 'absent'} as the CPU`, !!m === has(feat));
  }
}

// ---- the expert variants of the gpt-oss and Llama 4 families (layer_config.h) ----
// gpt-oss: logits + router bias, softmax over the top-k logits, gate/up/down biases, clamped
// SwiGLU (u + 1)·g·σ(α·g) with g ≤ limit, |u| ≤ limit. Llama 4: sigmoid of the top-k logits,
// the score applied to the expert input, the output unscaled.
function refVariant(c, w, v, x) {
  const { hidden: H, intermediate: F, experts: E, topK: k } = c,
    T = x.length / H;
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const l = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      let d = v.routerBias ? v.routerBias[e] : 0;
      for (let h = 0; h < H; h++) d += x[t * H + h] * w.router[e * H + h];
      l[e] = d;
    }
    const order = Array.from({ length: E }, (_, e) => e)
      .sort((a, b) => l[b] - l[a] || a - b)
      .slice(0, k);
    const m = l[order[0]];
    const ex = order.map((e) => Math.exp(l[e] - m)),
      s = ex.reduce((a, b) => a + b, 0);
    order.forEach((e, j) => {
      const score = v.scoreOnInput ? 1 / (1 + Math.exp(-l[e])) : ex[j] / s;
      const inScale = v.scoreOnInput ? score : 1,
        outScale = v.scoreOnInput ? 1 : score;
      const a = new Float64Array(F);
      for (let f = 0; f < F; f++) {
        let g = 0,
          u = 0;
        for (let h = 0; h < H; h++) {
          g += x[t * H + h] * inScale * w.gate[(e * F + f) * H + h];
          u += x[t * H + h] * inScale * w.up[(e * F + f) * H + h];
        }
        if (v.expertBiases) {
          g += v.expertBiases.gate[e * F + f];
          u += v.expertBiases.up[e * F + f];
        }
        if (v.clampedSwiglu) {
          const lim = v.clampedSwiglu.limit;
          g = Math.min(g, lim);
          u = Math.max(-lim, Math.min(u, lim));
          a[f] = (u + 1) * (g / (1 + Math.exp(-v.clampedSwiglu.alpha * g)));
        } else a[f] = (g / (1 + Math.exp(-g))) * u;
      }
      for (let h = 0; h < H; h++) {
        let d = v.expertBiases ? v.expertBiases.down[e * H + h] : 0;
        for (let f = 0; f < F; f++) d += w.down[(e * H + h) * F + f] * a[f];
        out[t * H + h] += outScale * d;
      }
    });
  }
  return out;
}

async function variants(isa, dtype) {
  const shape = { hidden: 72, intermediate: 40, experts: 7, topK: 3 };
  const weights = layerWeights(shape, 91, dtype);
  const kinds = {
    'gpt-oss': {
      scoring: 'softmax',
      renormalize: true,
      routerBias: gaussian(7, 92, 0.5),
      expertBiases: { gate: gaussian(7 * 40, 93, 0.3), up: gaussian(7 * 40, 94, 0.3), down: gaussian(7 * 72, 95, 0.3) },
      clampedSwiglu: { limit: 0.5, alpha: 1.702 },
    },
    llama4: { scoring: 'sigmoid', renormalize: false, scoreOnInput: true },
  };
  for (const [name, v] of Object.entries(kinds)) {
    const layer = await addon.createLayer({ ...shape, ...v, dtype, isa, threads: 2, poison: true, weights });
    const x = gaussian(9 * shape.hidden, 96);
    const r = await layer.forward(x);
    const one = await layer.forward(x.slice(4 * shape.hidden, 5 * shape.hidden));
    const ref = refVariant(shape, weights, v, x);
    const err = relL2(r.output, ref);
    // mxfp4/fp8: twice their bound, as test/kernels/kernels_mx_fp8.test.ts (fewer tokens pooled).
    const bound = (ON_GRID.has(dtype) ? 2 : 1) * BOUND[dtype];
    check(`${isa} ${dtype} ${name}: rel L2 ${err.toExponential(2)} <= ${bound}`, err <= bound);
    check(`${isa} ${dtype} ${name}: a token alone = in a batch`, bitwiseEqual(one.output, r.output.subarray(4 * shape.hidden, 5 * shape.hidden)));
    layer.close();
  }
}

async function main() {
  const info = addon.systemInfo();
  console.log(`arch ${process.arch}, best ISA ${info.bestIsa}, supported ${info.supportedIsas.join(', ')}`);
  const isas = [info.bestIsa, ...info.supportedIsas].filter((v, i, a) => a.indexOf(v) === i);
  if (process.arch === 'arm64') check('arm64 picks neon', info.bestIsa === 'neon', info.bestIsa);
  if (process.arch === 'arm64') check('arm64 runs neon, generic', info.supportedIsas.join() === 'neon,generic', info.supportedIsas);
  await isaChoice(info);
  await ceilings(info);
  for (const isa of isas) for (const dtype of DTYPES) for (const shape of ON_GRID.has(dtype) ? GRID_SHAPES : SHAPES) await kernels(isa, shape, dtype);
  for (const isa of isas) await fp8EveryCode(isa);
  if (isas.includes('neon')) {
    await sameAsGeneric('int8');
    await sameAsGeneric('int4');
    await sameAsGeneric('mxfp4');
    if (!cpuHasBf16()) await sameAsGeneric('bf16');
  }
  await router();
  for (const isa of isas) for (const dtype of ['f32', 'int8', 'mxfp4', 'fp8']) await variants(isa, dtype);
  for (const dtype of ['f32', 'int4', 'mxfp4', 'fp8']) await offload(dtype);
}

main()
  .catch((e) => check('uncaught', false, e && e.stack ? e.stack : String(e)))
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
