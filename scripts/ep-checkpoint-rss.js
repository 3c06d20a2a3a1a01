#!/usr/bin/env node
// Peak memory of expert-parallel ranks building a checkpoint layer: writes a synthetic OLMoE-shaped
// BF16 layer (safetensors, per-expert tensors) in a temp folder, runs `mpirun -np 2` ranks that each
// createEpLayer it and pass 8 tokens, and prints each rank's VmHWM (/proc/self/status, the kernel's
// peak resident set) before and after, and the checkpoint bytes it read.
//   node scripts/ep-checkpoint-rss.js [--experts 32] [--hidden 2048] [--intermediate 1024] [--dtype bf16]
// MOECAP_DIST: the compiled lib/ to load (default dist/), e.g. another revision's, to compare.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const dist = path.resolve(process.env.MOECAP_DIST || path.join(__dirname, '..', 'dist'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}

function status(field) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) * 1024 : NaN;
}

// Finite BF16 values (exponents around 2^-7..2^-1, random sign and mantissa), a 1 MiB block tiled.
function bf16Block() {
  const b = Buffer.alloc(1 << 20);
  let s = 12345;
  for (let i = 0; i < b.length; i += 2) {
    s = (s * 1103515245 + 12345) >>> 0;
    const exp = 120 + ((s >>> 8) % 6),
      sign = (s >>> 20) & 1,
      mant = (s >>> 1) & 0x7f;
    b.writeUInt16LE((sign << 15) | (exp << 7) | mant, i);
  }
  return b;
}

function writeCheckpoint(dir, H, F, E) {
  const cfg = {
    architectures: ['OlmoeForCausalLM'],
    hidden_size: H,
    num_hidden_layers: 1,
    num_experts_per_tok: 8,
    hidden_act: 'silu',
    intermediate_size: F,
    num_experts: E,
    norm_topk_prob: false,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  const tensors = [['model.layers.0.mlp.gate.weight', [E, H]]];
  for (let e = 0; e < E; e++)
    for (const [n, shape] of [
      ['gate_proj', [F, H]],
      ['up_proj', [F, H]],
      ['down_proj', [H, F]],
    ])
      tensors.push([`model.layers.0.mlp.experts.${e}.${n}.weight`, shape]);
  const header = {};
  let off = 0;
  for (const [name, shape] of tensors) {
    const n = shape[0] * shape[1] * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const fd = fs.openSync(path.join(dir, 'model.safetensors'), 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, len);
  fs.writeSync(fd, json);
  const block = bf16Block();
  for (let left = off; left > 0; left -= block.length) fs.writeSync(fd, block, 0, Math.min(left, block.length));
  fs.closeSync(fd);
  return 8 + json.length + off;
}

async function rank(checkpoint, dtype) {
  const ep = require(path.join(dist, 'ep'));
  const { checkpointReadCounters } = require(path.join(dist, 'checkpoint', 'checkpoint'));
  const world = ep.initEp(2);
  const hwm0 = status('VmHWM');
  const read0 = checkpointReadCounters().bytes;
  const t0 = process.hrtime.bigint();
  const l = await ep.createEpLayer({ checkpoint, layer: 0, dtype, threads: 1 }, { ranks: 2 });
  const createSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const read = checkpointReadCounters().bytes - read0;
  const H = Number(arg('hidden', 2048));
  const x = new Float32Array(8 * H).map((_, i) => Math.sin(i * 0.37));
  await l.forward(x);
  const line = { rank: world.rank, experts: l.experts.length, hwmBeforeCreate: hwm0, hwm: status('VmHWM'), rss: status('VmRSS'), read, createSeconds };
  console.log(JSON.stringify(line));
  ep.finalizeEp();
}

async function main() {
  const i = process.argv.indexOf('--rank');
  if (i > 0) return rank(process.argv[i + 1], arg('dtype', 'bf16'));
  const H = Number(arg('hidden', 2048)),
    F = Number(arg('intermediate', 1024)),
    E = Number(arg('experts', 32));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-rss-'));
  try {
    const bytes = writeCheckpoint(dir, H, F, E);
    const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', MOECAP_DIST: dist };
    const extra = ['--dtype', arg('dtype', 'bf16'), '--hidden', String(H)];
    const r = spawnSync('mpirun', ['-np', '2', '--oversubscribe', process.execPath, __filename, '--rank', dir, ...extra], { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`mpirun exited ${r.status}: ${r.stderr}`);
    const ranks = r.stdout
      .split('\n')
      .filter((s) => s.startsWith('{'))
      .map((s) => JSON.parse(s))
      .sort((a, b) => a.rank - b.rank);
    const mib = (b) => (b / 2 ** 20).toFixed(0);
    console.log(
      `checkpoint: H=${H} F=${F} E=${E} BF16, ${mib(bytes)} MiB on disk; dist ${dist}; load ${os
        .loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
    );
    for (const s of ranks)
      console.log(
        `rank ${s.rank}: ${s.experts} experts, VmHWM ${mib(s.hwmBeforeCreate)} MiB before createEpLayer -> ${mib(s.hwm)} MiB after (+${mib(s.hwm - s.hwmBeforeCreate)}), VmRSS ${mib(s.rss)} MiB, read ${mib(s.read)} MiB, create ${s.createSeconds.toFixed(1)} s`,
      );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
