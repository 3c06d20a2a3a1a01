#!/usr/bin/env node
// A release's stored codes on the GPU, through the addon (needs dist/, the addon and a CUDA device;
// scripts/gpu-check.sh runs it). Writes two tiny checkpoints in their exact on-disk layouts:
//   fp8    DeepSeek-V3: F8_E4M3 experts and shared expert with F32 weight_scale_inv 128×128 blocks
//          (H 320, F 200: partial last blocks), sigmoid grouped router with bias;
//   mxfp4  gpt-oss: *_blocks / *_scales (E2M1 pairs, E8M0 per 32), router and expert biases;
// and runs each on the CPU and on CUDA with dtype 'native' (the stored codes, packed by the core)
// and dtype 'f32' on the CPU (the decoded values; the CPU f32 layer is tested against an fp64
// reference in jest). Prints per case: experts equal, and ‖out − f32‖ / ‖f32‖ for the CPU native
// and the CUDA native layer. Exit 1 when an error bound is broken, 77 when CUDA is unusable.
//   node scripts/gpu-checkpoint-check.js [--keep DIR] [--backend cpu]   (cpu: the script's own check, no GPU)
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const moecap = require(path.join(__dirname, '..', 'dist', 'index.js'));
const { uniformStream: rng } = require('../bench/inputs');

/** safetensors: 8-byte header length, JSON header (offsets relative to the data), data. */
function writeSafetensors(file, tensors) {
  const header = {};
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, ...tensors.map((t) => t.bytes)]));
}

function writeCheckpoint(dir, config, tensors) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}

const f32 = (name, shape, r, scale) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Float32Array.from({ length: n }, () => (2 * r() - 1) * scale);
  return { name, dtype: 'F32', shape, bytes: Buffer.from(v.buffer) };
};

// E4M3 by value (0x7f / 0xff are NaN), nearest finite code by search.
const E4M3 = [];
for (let b = 0; b < 128; b++) {
  const e = (b >> 3) & 15,
    m = b & 7;
  E4M3.push(e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
}
function e4m3(x) {
  const a = Math.min(Math.abs(x), 448);
  let best = 0;
  for (let b = 1; b < 127; b++) if (Math.abs(E4M3[b] - a) < Math.abs(E4M3[best] - a)) best = b;
  return (x < 0 ? 0x80 : 0) | best;
}

/** An F8_E4M3 [R, C] weight with F32 scale_inv over 128×128 blocks (random per-block magnitudes). */
function fp8Weight(name, R, C, r) {
  const sr = Math.ceil(R / 128),
    sc = Math.ceil(C / 128);
  const scale = Float32Array.from({ length: sr * sc }, () => (0.5 + r()) / (448 * Math.sqrt(C)));
  const bytes = Buffer.alloc(R * C);
  for (let i = 0; i < R * C; i++) bytes[i] = e4m3((2 * r() - 1) * 448);
  return [
    { name, dtype: 'F8_E4M3', shape: [R, C], bytes },
    { name: `${name}_scale_inv`, dtype: 'F32', shape: [sr, sc], bytes: Buffer.from(scale.buffer) },
  ];
}

function deepseekFp8(dir) {
  const H = 320,
    F = 200,
    E = 8;
  const r = rng(11);
  const p = 'model.layers.0.mlp.';
  const t = [f32(`${p}gate.weight`, [E, H], r, 3 / Math.sqrt(H)), f32(`${p}gate.e_score_correction_bias`, [E], r, 0.5)];
  // Each expert's three projections [out, in], then the shared expert's.
  const ffn = (prefix) => {
    for (const [m, R, C] of [
      ['gate_proj', F, H],
      ['up_proj', F, H],
      ['down_proj', H, F],
    ])
      t.push(...fp8Weight(`${prefix}${m}.weight`, R, C, r));
  };
  for (let e = 0; e < E; e++) ffn(`${p}experts.${e}.`);
  ffn(`${p}shared_experts.`);
  writeCheckpoint(
    dir,
    {
      architectures: ['DeepseekV3ForCausalLM'],
      hidden_size: H,
      num_hidden_layers: 1,
      num_experts_per_tok: 2,
      hidden_act: 'silu',
      moe_intermediate_size: F,
      n_routed_experts: E,
      n_shared_experts: 1,
      first_k_dense_replace: 0,
      norm_topk_prob: true,
      routed_scaling_factor: 2.5,
      scoring_func: 'sigmoid',
      topk_method: 'noaux_tc',
      n_group: 2,
      topk_group: 1,
      quantization_config: { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [128, 128] },
    },
    t,
  );
  return H;
}

function gptOssMxfp4(dir) {
  const H = 192,
    F = 96,
    E = 8;
  const r = rng(23);
  const p = 'model.layers.0.mlp.';
  const t = [
    f32(`${p}router.weight`, [E, H], r, 3 / Math.sqrt(H)),
    f32(`${p}router.bias`, [E], r, 0.5),
    f32(`${p}experts.gate_up_proj_bias`, [E, 2 * F], r, 0.3),
    f32(`${p}experts.down_proj_bias`, [E, H], r, 0.3),
  ];
  const mx = (name, rows, cols) => {
    const nb = (E * rows * cols) / 32;
    const blocks = Buffer.alloc(nb * 16),
      scales = Buffer.alloc(nb);
    for (let b = 0; b < nb; b++) {
      scales[b] = 119 + Math.floor(r() * 5);
      for (let j = 0; j < 16; j++) blocks[b * 16 + j] = Math.floor(r() * 256);
    }
    t.push({ name: `${name}_blocks`, dtype: 'U8', shape: [E, rows, cols / 32, 16], bytes: blocks });
    t.push({ name: `${name}_scales`, dtype: 'U8', shape: [E, rows, cols / 32], bytes: scales });
  };
  mx(`${p}experts.gate_up_proj`, 2 * F, H);
  mx(`${p}experts.down_proj`, H, F);
  writeCheckpoint(
    dir,
    {
      architectures: ['GptOssForCausalLM'],
      hidden_size: H,
      intermediate_size: F,
      num_hidden_layers: 1,
      num_local_experts: E,
      num_experts_per_tok: 2,
      hidden_act: 'silu',
      swiglu_limit: 7.0,
      quantization_config: { quant_method: 'mxfp4', modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router'] },
    },
    t,
  );
  return H;
}

async function forward(checkpoint, backend, dtype, x) {
  const moe = await moecap.createMoeLayer({ checkpoint, layer: 0, backend, dtype, poison: true });
  try {
    const info = moe.info();
    const res = await moe.forward(x);
    return { info, out: Float32Array.from(res.output), ids: Array.from(res.expertIds) };
  } finally {
    moe.close();
  }
}

function relErr(a, ref) {
  let d = 0,
    n = 0,
    finite = true;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(a[i])) finite = false;
    d += (a[i] - ref[i]) ** 2;
    n += ref[i] ** 2;
  }
  return finite ? Math.sqrt(d / n) : NaN;
}

/** Sorted expert ids per token (ties may order differently). */
const idSets = (ids, k) =>
  Array.from({ length: ids.length / k }, (_, t) =>
    ids
      .slice(t * k, (t + 1) * k)
      .sort((a, b) => a - b)
      .join(','),
  );

async function main() {
  const bi = process.argv.indexOf('--backend');
  const backend = bi > 0 ? process.argv[bi + 1] : 'cuda';
  const probe = moecap.backendInfo(backend);
  console.log(`backendInfo('${backend}'): ${probe.backend}: ${probe.reason}`);
  if (probe.backend !== backend) process.exit(77);
  const keep = process.argv.indexOf('--keep');
  const root = keep > 0 ? process.argv[keep + 1] : fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-gpu-ckpt-'));
  // Bounds on ‖out − f32‖/‖f32‖: fp8 on the GPU takes bf16 activation rows (2^-9 relative rounding);
  // mxfp4 takes int8 activation blocks on both (the CPU's own error here is about 1e-2).
  const cases = [
    { name: 'fp8 (DeepSeek-V3, 128×128 scale_inv)', dir: path.join(root, 'fp8'), write: deepseekFp8, bound: 1e-2 },
    { name: 'mxfp4 (gpt-oss blocks/scales)', dir: path.join(root, 'mxfp4'), write: gptOssMxfp4, bound: 3e-2 },
  ];
  let failed = 0;
  for (const c of cases) {
    const H = c.write(c.dir);
    for (const T of [1, 7, 67]) {
      const r = rng(100 + T);
      const x = Float32Array.from({ length: T * H }, () => 2 * r() - 1);
      const ref = await forward(c.dir, 'cpu', 'f32', x);
      const cpu = await forward(c.dir, 'cpu', 'native', x);
      const gpu = await forward(c.dir, backend, 'native', x);
      const k = ref.ids.length / T;
      const same = idSets(gpu.ids, k).every((s, t) => s === idSets(ref.ids, k)[t]);
      const eCpu = relErr(cpu.out, ref.out),
        eGpu = relErr(gpu.out, ref.out),
        eBoth = relErr(gpu.out, cpu.out);
      const ok = gpu.info.backend === backend && same && eGpu <= c.bound;
      if (!ok) failed++;
      console.log(
        `${ok ? 'PASS' : 'FAIL'} ckpt ${c.name} T=${T}: dtype cpu ${cpu.info.dtype} / ${backend} ${gpu.info.dtype} (${gpu.info.backend}); ` +
          `experts ${same ? 'equal' : 'DIFFER'}; ‖Δ‖/‖f32‖ cpu native ${eCpu.toExponential(2)}, ${backend} native ${eGpu.toExponential(2)} (bound ${c.bound}); ${backend} vs cpu native ${eBoth.toExponential(2)}`,
      );
    }
  }
  if (keep < 0) fs.rmSync(root, { recursive: true, force: true });
  console.log(`checkpoint on GPU: ${failed ? `FAIL (${failed} cases)` : 'OK'}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`FAIL ckpt: ${e.code ?? ''} ${e.message}`);
  process.exit(1);
});
