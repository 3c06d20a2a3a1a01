#!/usr/bin/env node
// Checkpoint conversion benchmark (not a test). Writes a synthetic OLMoE-shaped checkpoint in the
// exact safetensors layout (H 2048, F 1024, 64 experts, top-8, BF16, one shard per layer; random
// finite values), then, for one layer, in fresh child processes:
//   cold read   the shard read front to back with its page cache dropped (the native file-read
//               calibration: fdatasync + posix_fadvise DONTNEED, 8 MiB preads): the ceiling;
//   convert     createMoeLayer({ checkpoint, layer, offload }) with the shard's cache dropped first:
//               every expert read, converted and packed into the cached expert file, then one pass;
//   reuse       the same again: the expert file is reused (no conversion), read cold;
// and reports the conversion rate (GB/s of checkpoint bytes read) against the cold read, the time
// to the first pass, and each child's peak RSS against the resident cache plus one expert and the
// converter's staged checkpoint bytes (an expert's rows read ahead of packing).
//
//   node bench/checkpoint_convert.js [--layers 3] [--dtype bf16] [--fraction 0.125] [--dir DIR] [--keep]
'use strict';
const { execFileSync } = require('child_process');
const { randomBytes } = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const args = process.argv.slice(2);
const arg = (name, def) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : def;
};
const L = +arg('layers', 3);
const dtype = arg('dtype', 'bf16');
const fraction = +arg('fraction', 0.125);
const dir = arg('dir', path.join(os.tmpdir(), 'moecap-ckpt-bench'));
const H = 2048,
  F = 1024,
  E = 64,
  K = 8;
const ckpt = path.join(dir, 'olmoe-synthetic');
const cacheDir = path.join(dir, 'cache');
const dist = path.join(__dirname, '..', 'dist', 'index.js');

/** Random finite BF16 bits (|v| in [2^-8, 2^-6)), n values. */
function bf16(n) {
  const b = randomBytes(2 * n);
  const u = new Uint16Array(b.buffer, b.byteOffset, n);
  for (let i = 0; i < n; i++) u[i] = (u[i] & 0x807f) | (i & 1 ? 0x3c00 : 0x3b80);
  return b;
}

/** One shard per layer, written tensor by tensor (never the whole shard in memory). */
function writeCheckpoint() {
  fs.rmSync(ckpt, { recursive: true, force: true });
  fs.mkdirSync(ckpt, { recursive: true });
  fs.writeFileSync(
    path.join(ckpt, 'config.json'),
    JSON.stringify({
      architectures: ['OlmoeForCausalLM'],
      hidden_size: H,
      intermediate_size: F,
      num_hidden_layers: L,
      num_experts: E,
      num_experts_per_tok: K,
      norm_topk_prob: false,
      hidden_act: 'silu',
    }),
  );
  const weightMap = {};
  let total = 0;
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const tensors = [
      [`${p}post_attention_layernorm.weight`, [H]],
      [`${p}mlp.gate.weight`, [E, H]],
    ];
    for (let e = 0; e < E; e++)
      for (const [n, s] of [
        ['gate_proj', [F, H]],
        ['up_proj', [F, H]],
        ['down_proj', [H, F]],
      ])
        tensors.push([`${p}mlp.experts.${e}.${n}.weight`, s]);
    const header = { __metadata__: { format: 'pt' } };
    let at = 0;
    for (const [name, shape] of tensors) {
      const bytes = shape.reduce((a, b) => a * b, 1) * 2;
      header[name] = { dtype: 'BF16', shape, data_offsets: [at, at + bytes] };
      at += bytes;
    }
    let json = JSON.stringify(header);
    while ((8 + json.length) % 8) json += ' ';
    const shard = `model-${String(l + 1).padStart(5, '0')}-of-${String(L).padStart(5, '0')}.safetensors`;
    const fd = fs.openSync(path.join(ckpt, shard), 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    fs.writeSync(fd, len);
    fs.writeSync(fd, json);
    for (const [name, shape] of tensors) {
      const n = shape.reduce((a, b) => a * b, 1);
      // The norm weight near 1 (a real one's scale), the rest small random values.
      const b = name.endsWith('layernorm.weight') ? Buffer.from(new Uint16Array(n).fill(0x3f80).buffer) : bf16(n);
      fs.writeSync(fd, b);
      weightMap[name] = shard;
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    total += 8 + json.length + at;
  }
  fs.writeFileSync(path.join(ckpt, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
  return total;
}

/** Runs `body` (JS using `m` = the package, `addon` = the native addon) in a fresh node; returns its JSON line. */
function child(body) {
  const script = `const m = require(${JSON.stringify(dist)}); const addon = require('node-gyp-build')(${JSON.stringify(path.join(__dirname, '..'))});
(async () => { ${body} })().then((r) => { process.stdout.write(JSON.stringify({ ...r, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\\n'); }, (e) => { console.error(e); process.exit(1); });`;
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

const layer = L - 1;
const shard = `model-${String(layer + 1).padStart(5, '0')}-of-${String(L).padStart(5, '0')}.safetensors`;
const shardPath = path.join(ckpt, shard);
const t0 = Date.now();
const totalBytes = writeCheckpoint();
console.log(
  `checkpoint: ${ckpt}, ${L} OLMoE-shaped layers (H ${H}, F ${F}, E ${E}, top-${K}), BF16, ${(totalBytes / 1e9).toFixed(2)} GB on disk, written in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);
fs.rmSync(cacheDir, { recursive: true, force: true });

const expertSrcBytes = 3 * H * F * 2; // one expert's BF16 bytes on disk
const layerSrcBytes = E * expertSrcBytes + E * H * 2;
// Cold sequential read of the same shard (drops its page cache before reading; buffered 8 MiB preads, like the converter's reads).
const cold = child(`const r = await addon.measureFileRead(${JSON.stringify(shardPath)}, { bytes: ${fs.statSync(shardPath).size}, repeats: 2 }); return r;`);
const dropShard = `await addon.measureFileRead(${JSON.stringify(shardPath)}, { bytes: 8 << 20, repeats: 1, direct: true });`; // drops the shard's page cache, reads 8 MiB with O_DIRECT (not cached)
const opts = `{ checkpoint: ${JSON.stringify(ckpt)}, layer: ${layer}, dtype: ${JSON.stringify(dtype)}, offload: { capacity: { fraction: ${fraction} }, coldCache: true }, cacheDir: ${JSON.stringify(cacheDir)} }`;
const firstPass = (label) => `${dropShard}
  const t0 = process.hrtime.bigint();
  const moe = await m.createMoeLayer(${opts});
  const t1 = process.hrtime.bigint();
  const x = new Float32Array(16 * ${H}); for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) ;
  const r = await moe.forward(x);
  const t2 = process.hrtime.bigint();
  const info = moe.offloadInfo();
  const staged = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'checkpoint', 'checkpoint.js'))}).checkpointReadCounters().stagedPeakBytes;
  const out = { label: ${JSON.stringify(label)}, createS: Number(t1 - t0) / 1e9, firstPassS: Number(t2 - t0) / 1e9, reused: moe.expertStore.reused, capacity: info.capacity, expertBytes: info.expertBytes ?? moe.info().expertBytes, stagedPeakBytes: staged };
  moe.close();
  return out;`;
const base = child(`return {};`);
// The engine's own packing and writing of the same shape from seeded weights (no checkpoint read): the other ceiling.
const seeded = child(`const t0 = process.hrtime.bigint();
  const moe = await m.createMoeLayer({ hidden: ${H}, intermediate: ${F}, experts: ${E}, topK: ${K}, dtype: ${JSON.stringify(dtype)}, weights: { seed: 1 }, offload: { capacity: 8, path: ${JSON.stringify(path.join(dir, 'seeded.experts'))} } });
  const s = Number(process.hrtime.bigint() - t0) / 1e9; moe.close(); return { s };`);
const conv = child(firstPass('convert'));
const reuse = child(firstPass('reuse'));

const gbs = (b, s) => (b / s / 1e9).toFixed(2);
const mb = (b) => (b / 1e6).toFixed(0);
const convRate = layerSrcBytes / conv.createS;
const residentBytes = conv.capacity * conv.expertBytes;
console.log(
  `load: ${os
    .loadavg()
    .map((v) => v.toFixed(1))
    .join(' ')} (1/5/15 min) on ${os.cpus().length} CPUs; layer ${layer}, dtype ${dtype}, resident ${conv.capacity} of ${E} experts`,
);
console.log('');
console.log('| measure | value | ratio |');
console.log('|---|---|---|');
console.log(
  `| cold sequential read of the shard (${mb(cold.bytes)} MB, cache dropped: ${cold.cacheDropped}) | ${gbs(cold.bandwidth.median ?? cold.bandwidth, 1)} GB/s | 1 (ceiling) |`,
);
const coldBw = cold.bandwidth.median ?? cold.bandwidth;
console.log(
  `| conversion: ${mb(layerSrcBytes)} MB of checkpoint read, converted, packed, written (${conv.reused ? 'REUSED?' : 'converted'}) | ${gbs(layerSrcBytes, conv.createS)} GB/s (${conv.createS.toFixed(2)} s) | ${(convRate / coldBw).toFixed(2)} of the cold read |`,
);
console.log(
  `| packing + writing the same layer from seeded weights (no checkpoint read) | ${seeded.s.toFixed(2)} s | conversion takes ${(conv.createS / seeded.s).toFixed(2)}× this |`,
);
console.log(`| time to first pass, cold model, converting (T = 16) | ${conv.firstPassS.toFixed(2)} s | |`);
console.log(
  `| time to first pass, expert file reused (${reuse.reused ? 'reused' : 'NOT reused'}), read cold (T = 16) | ${reuse.firstPassS.toFixed(2)} s | ${(reuse.firstPassS / conv.firstPassS).toFixed(2)} of converting |`,
);
console.log(`| peak RSS: bare node + addon | ${mb(base.maxRssBytes)} MB | |`);
console.log(
  `| peak RSS: converting + first pass | ${mb(conv.maxRssBytes)} MB | +${mb(conv.maxRssBytes - base.maxRssBytes)} MB over bare; resident cache ${mb(residentBytes)} MB + one packed expert ${mb(conv.expertBytes)} MB + staged checkpoint bytes at most ${mb(conv.stagedPeakBytes)} MB (${(conv.stagedPeakBytes / expertSrcBytes).toFixed(1)} experts) = ${mb(residentBytes + conv.expertBytes + conv.stagedPeakBytes)} MB; layer ${mb(E * conv.expertBytes)} MB, checkpoint ${mb(totalBytes)} MB |`,
);
console.log(`| peak RSS: reuse + first pass | ${mb(reuse.maxRssBytes)} MB | +${mb(reuse.maxRssBytes - base.maxRssBytes)} MB over bare |`);
if (!args.includes('--keep')) fs.rmSync(dir, { recursive: true, force: true });
