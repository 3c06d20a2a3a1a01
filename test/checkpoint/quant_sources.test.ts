// Quantised source checkpoints end to end: GGUF Q4_K / Q6_K experts and safetensors FP8 E4M3 with
// per-block scale_inv (DeepSeek-V3 releases) against the family reference on the decoded values;
// Q4_0 → int4 kept exactly (levels and scales); `inspect --error`; bad scale tensors and configs.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer } from '../../lib';
import { inspectCommand } from '../../lib/cli/commands/inspect';
import { openCheckpoint, readLayer } from '../../lib/checkpoint/checkpoint';
import { loadAddon } from '../../lib/native/loader';
import { callNative } from '../../lib/native/call';
import { readSafetensorsCheckpoint } from '../../lib/checkpoint/safetensors';
import { buildGguf, logicalTensors } from './build';
import { referenceForward, type RefSpec, type Weights } from './family_reference';
import { bf16Value, bf16Bits, f16Value, f16Bits, randomArray, rng, writeSafetensorsCheckpoint, type StTensor } from './writers';

interface Addon {
  readTensorElements(
    file: string,
    offset: number,
    dtype: string,
    n: number,
    out: Float32Array,
    at: number,
    tensor: string,
    scales?: object,
    row?: number,
  ): void;
  conversionError(values: Float32Array, rows: number, cols: number, dtype: string): { maxAbs: number; sumSqErr: number; sumSqRef: number; values: number };
}
const addon = loadAddon() as unknown as Addon;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-qsrc-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function checkAgainstReference(checkpoint: string, layer: number, spec: RefSpec, W: Weights, seed: number, T = 5, dtype?: 'native'): Promise<void> {
  const x = Float32Array.from(randomArray(rng(seed), T * spec.H, 1));
  const ref = referenceForward(spec, W, layer, x);
  const moe = await createMoeLayer({ checkpoint, layer, threads: 2, poison: true, dtype: dtype ?? 'f32' });
  try {
    const res = await moe.forward(x);
    for (let t = 0; t < T; t++) expect(Array.from(res.expertIds.subarray(t * spec.k, (t + 1) * spec.k)).sort((a, b) => a - b)).toEqual(ref.ids[t]);
    let maxRef = 0,
      maxErr = 0;
    for (let i = 0; i < ref.out.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
      maxErr = Math.max(maxErr, Math.abs(res.output[i] - ref.out[i]));
    }
    expect(maxRef).toBeGreaterThan(1e-3);
    expect(maxErr / maxRef).toBeLessThan(2e-5);
  } finally {
    moe.close();
  }
}

async function inspect(args: string[], flags: Record<string, string | boolean>): Promise<string> {
  let text = '';
  const rc = await inspectCommand.run({ options: flags, positional: args, given: new Set(Object.keys(flags)) }, { out: (s) => (text += s), err: () => {} });
  expect(rc).toBe(0);
  return text;
}

test('GGUF Q4_K gate/up and Q6_K down experts (256-wide rows) match the reference on the decoded values', async () => {
  const s: RefSpec = { family: 'qwen3_moe', H: 256, F: 256, E: 3, k: 2, normTopkProb: true };
  const file = path.join(tmp, 'qk.gguf');
  const W = buildGguf(
    file,
    s,
    'qwen3moe',
    1,
    [0],
    [['qwen3moe.expert_feed_forward_length', 'u32', s.F]],
    (kind) => (kind === 'down' ? 'Q6_K' : 'Q4_K'),
    rng(31),
  );
  await checkAgainstReference(file, 0, s, W, 32);
  const held = readLayer(openCheckpoint(file), 0);
  // The reader's values are the test's own fp64 decoding of the same blocks, bitwise.
  const want = W.get('model.layers.0.mlp.experts.2.down_proj.weight')!;
  expect(Buffer.from(held.weights.down.buffer, 2 * s.H * s.F * 4, s.H * s.F * 4).equals(Buffer.from(want.buffer))).toBe(true);
});

test.each([
  ['Q5_K', 'Q4_1', 'Q5_0'],
  ['Q5_0', 'Q5_1', 'Q5_K'],
] as const)('GGUF %s gate, %s up, %s down experts match the reference on the decoded values', async (gate, up, down) => {
  const s: RefSpec = { family: 'qwen3_moe', H: 256, F: 256, E: 3, k: 2, normTopkProb: true };
  const file = path.join(tmp, `q5-${gate}-${up}-${down}.gguf`);
  const W = buildGguf(
    file,
    s,
    'qwen3moe',
    1,
    [0],
    [['qwen3moe.expert_feed_forward_length', 'u32', s.F]],
    (kind) => (kind === 'gate' ? gate : kind === 'up' ? up : down),
    rng(33),
  );
  await checkAgainstReference(file, 0, s, W, 34);
  const ck = openCheckpoint(file);
  expect(ck.tensors.get('blk.0.ffn_down_exps.weight')).toMatchObject({ dtype: down });
  const held = readLayer(ck, 0);
  for (const [kind, name] of [
    ['gate', 'gate_proj'],
    ['up', 'up_proj'],
    ['down', 'down_proj'],
  ] as const) {
    const want = W.get(`model.layers.0.mlp.experts.1.${name}.weight`)!;
    expect(Buffer.from(held.weights[kind].buffer, s.H * s.F * 4, s.H * s.F * 4).equals(Buffer.from(want.buffer))).toBe(true);
  }
  // Not exact in any engine dtype: 'native' is refused naming the formats.
  await expect(createMoeLayer({ checkpoint: file, layer: 0, threads: 1 })).rejects.toMatchObject({
    code: 'ERR_INVALID_OPTION',
    message: expect.stringMatching(new RegExp(`stores this layer's experts as .*${down}`)),
  });
});

test('a GGUF Q4_K tensor whose rows are not whole 256-element super-blocks is refused naming it', async () => {
  const s: RefSpec = { family: 'qwen3_moe', H: 64, F: 32, E: 2, k: 1, normTopkProb: true };
  const file = path.join(tmp, 'badrow.gguf');
  // Q4_0 bytes relabelled Q4_K (type 12): 64-element rows are not whole super-blocks.
  buildGguf(file, s, 'qwen3moe', 1, [0], [['qwen3moe.expert_feed_forward_length', 'u32', s.F]], 'Q4_0', rng(3));
  const b = fs.readFileSync(file);
  const name = Buffer.from('blk.0.ffn_gate_exps.weight');
  const at = b.indexOf(name) + name.length + 4 + 3 * 8; // after the name, dimension count and 3 dims
  expect(b.readUInt32LE(at)).toBe(2);
  b.writeUInt32LE(12, at);
  fs.writeFileSync(file, b);
  expect(() => openCheckpoint(file)).toThrow(
    expect.objectContaining({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/tensor blk\.0\.ffn_gate_exps\.weight: row of 64 elements is not a whole number of Q4_K blocks \(256\)/),
    }),
  );
});

describe('Q4_0 → int4 block-32', () => {
  test('every random Q4_0 block (any nibbles, any fp16 d) converts with zero error through the engine quantiser', () => {
    const r = rng(41);
    const blocks = 3000;
    const buf = Buffer.alloc(blocks * 18);
    for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(r() * 256);
    for (let b = 0; b < blocks; b++) {
      // Finite normal d of either sign within the int4 scale range; some blocks use only levels -7..7 or -3..3.
      buf.writeUInt16LE((r() < 0.5 ? 0x8000 : 0) | ((3 + Math.floor(r() * 25)) << 10) | Math.floor(r() * 1024), b * 18);
      if (b % 3 === 1) for (let j = 0; j < 16; j++) buf[b * 18 + 2 + j] = (1 + (buf[b * 18 + 2 + j] % 15)) | ((1 + ((buf[b * 18 + 2 + j] >> 4) % 15)) << 4);
      if (b % 3 === 2) for (let j = 0; j < 16; j++) buf[b * 18 + 2 + j] = (5 + (buf[b * 18 + 2 + j] % 7)) | ((5 + ((buf[b * 18 + 2 + j] >> 4) % 7)) << 4);
    }
    const f = path.join(tmp, 'q40.bin');
    fs.writeFileSync(f, buf);
    const v = new Float32Array(blocks * 32);
    callNative(() => addon.readTensorElements(f, 0, 'Q4_0', v.length, v, 0, 'w'));
    const rows = 30,
      cols = v.length / rows;
    const e = addon.conversionError(v, rows, cols, 'int4');
    expect(e.values).toBe(v.length);
    expect(e.sumSqRef).toBeGreaterThan(0);
    expect(e.maxAbs).toBe(0);
    expect(e.sumSqErr).toBe(0);
    // The same values are not exact in bf16 or int8 in general (so the zero above is not vacuous).
    expect(addon.conversionError(v, rows, cols, 'int8').maxAbs).toBeGreaterThan(0);
  });

  test('the packed int4 expert holds the Q4_0 nibbles and fp16 d values themselves', async () => {
    const s: RefSpec = { family: 'qwen3_moe', H: 64, F: 32, E: 3, k: 2, normTopkProb: true };
    const file = path.join(tmp, 'q4.gguf');
    buildGguf(file, s, 'qwen3moe', 1, [0], [['qwen3moe.expert_feed_forward_length', 'u32', s.F]], 'Q4_0', rng(9));
    const moe = await createMoeLayer({ checkpoint: file, layer: 0, dtype: 'int4', offload: { capacity: 1 }, cacheDir: path.join(tmp, 'cache-q4'), threads: 2 });
    const ef = moe.expertStore!.file;
    moe.close();
    const ck = openCheckpoint(file);
    const e = 1;
    const nibbles: number[] = [],
      scales: number[] = [];
    for (const n of ['gate', 'up', 'down']) {
      const t = ck.tensors.get(`blk.0.ffn_${n}_exps.weight`)!;
      const per = t.byteLength / s.E;
      const b = Buffer.alloc(per);
      const fd = fs.openSync(t.file, 'r');
      fs.readSync(fd, b, 0, per, t.offset + e * per);
      fs.closeSync(fd);
      for (let at = 0; at < per; at += 18) {
        scales.push(b.readUInt16LE(at));
        for (let j = 0; j < 16; j++) nibbles.push(b[at + 2 + j] & 15, b[at + 2 + j] >> 4);
      }
    }
    // Engine int4 panel blocks: 512 bytes of two-lane nibbles (level + 8), then 32 fp16 scales.
    const eb = expertBytes(ef, e);
    const gotNibbles: number[] = [],
      gotScales: number[] = [];
    expect(eb.length % 576).toBe(0);
    for (let at = 0; at < eb.length; at += 576) {
      for (let j = 0; j < 512; j++) gotNibbles.push(eb[at + j] & 15, eb[at + j] >> 4);
      for (let j = 0; j < 32; j++) gotScales.push(eb.readUInt16LE(at + 512 + 2 * j));
    }
    const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
    expect(sorted(gotScales)).toEqual(sorted(scales));
    expect(sorted(gotNibbles)).toEqual(sorted(nibbles));
  });
});

/** Packed bytes of expert e of an engine expert file (header: 88 bytes, then {offset, size, xxh64} per expert). */
function expertBytes(file: string, e: number): Buffer {
  const b = fs.readFileSync(file);
  const at = 88 + 24 * e;
  const off = Number(b.readBigUInt64LE(at)),
    size = Number(b.readBigUInt64LE(at + 8));
  return b.subarray(off, off + size);
}

// ------------------------------------------------------------------ FP8 E4M3 with block scale_inv

const E4M3: number[] = [];
for (let b = 0; b < 256; b++) {
  const e = (b >> 3) & 15,
    m = b & 7;
  if (e === 15 && m === 7) E4M3.push(NaN);
  else E4M3.push((b & 0x80 ? -1 : 1) * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7)));
}
/** Nearest E4M3 bits (binary search over the finite non-negative values; ties don't matter for a test encoder). */
const E4M3_POS_COUNT = 127; // 0x00..0x7e: the finite non-negative patterns, ascending in value
function e4m3Bits(x: number): number {
  const a = Math.abs(x);
  let lo = 0,
    hi = E4M3_POS_COUNT - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (E4M3[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  const b = lo + 1 < E4M3_POS_COUNT && E4M3[lo + 1] - a < a - E4M3[lo] ? lo + 1 : lo;
  return (x < 0 ? 0x80 : 0) | b;
}

/** An F8_E4M3 weight [R, C] and its F32 scale_inv [ceil(R/br), ceil(C/bc)]; decoded = fp32(fp8 · scale). */
function fp8Tensor(name: string, R: number, C: number, values: ArrayLike<number>, br: number, bc: number): { tensors: StTensor[]; decoded: Float32Array } {
  const sr = Math.ceil(R / br),
    sc = Math.ceil(C / bc);
  const scale = new Float32Array(sr * sc);
  for (let i = 0; i < sr; i++)
    for (let j = 0; j < sc; j++) {
      let a = 0;
      for (let r = i * br; r < Math.min(R, (i + 1) * br); r++)
        for (let c = j * bc; c < Math.min(C, (j + 1) * bc); c++) a = Math.max(a, Math.abs(values[r * C + c]));
      scale[i * sc + j] = Math.fround(a / 448) || 1;
    }
  const bytes = Buffer.alloc(R * C);
  const decoded = new Float32Array(R * C);
  for (let r = 0; r < R; r++)
    for (let c = 0; c < C; c++) {
      const s = scale[Math.floor(r / br) * sc + Math.floor(c / bc)];
      const b = e4m3Bits(values[r * C + c] / s);
      bytes[r * C + c] = b;
      decoded[r * C + c] = Math.fround(E4M3[b] * s);
    }
  return {
    tensors: [
      { name, dtype: 'F8_E4M3', shape: [R, C], bytes },
      { name: `${name}_scale_inv`, dtype: 'F32', shape: [sr, sc], bytes: Buffer.from(scale.buffer) },
    ],
    decoded,
  };
}

const dsv3 = (s: RefSpec, block?: number[], method = 'fp8') => ({
  architectures: ['DeepseekV3ForCausalLM'],
  hidden_size: s.H,
  num_hidden_layers: 1,
  num_experts_per_tok: s.k,
  hidden_act: 'silu',
  moe_intermediate_size: s.F,
  n_routed_experts: s.E,
  n_shared_experts: 1,
  first_k_dense_replace: 0,
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  scoring_func: 'sigmoid',
  topk_method: 'noaux_tc',
  n_group: 2,
  topk_group: 1,
  quantization_config: { quant_method: method, fmt: 'e4m3', activation_scheme: 'dynamic', ...(block ? { weight_block_size: block } : {}) },
});

/** A DeepSeek-V3 layer 0 whose expert and shared-expert weights are FP8 with scale_inv blocks (router, bias F32). */
function buildFp8(dir: string, s: RefSpec, block: [number, number], seed: number, cfgBlock: number[] | null = block): Weights {
  const W: Weights = new Map();
  const tensors: StTensor[] = [];
  for (const t of logicalTensors(s, 0, rng(seed))) {
    if (t.name.endsWith('gate.weight') || t.name.endsWith('bias')) {
      const f = Float32Array.from(t.values);
      tensors.push({ name: t.name, dtype: 'F32', shape: t.shape, bytes: Buffer.from(f.buffer) });
      W.set(t.name, f);
    } else {
      const q = fp8Tensor(t.name, t.shape[0], t.shape[1], t.values, block[0], block[1]);
      tensors.push(...q.tensors);
      W.set(t.name, q.decoded);
    }
  }
  writeSafetensorsCheckpoint(dir, dsv3(s, cfgBlock ?? undefined), tensors, 2);
  return W;
}

describe('FP8 E4M3 with weight_scale_inv blocks', () => {
  const s: RefSpec = { family: 'deepseek_v3', H: 24, F: 20, E: 4, k: 2, normTopkProb: true, routedScalingFactor: 2.5, nGroup: 2, topkGroup: 1, sharedF: 20 };

  test('DeepSeek-V3 layer with 16×8 blocks (partial last blocks) from quantization_config: streamed and in memory match the reference', async () => {
    const dir = path.join(tmp, 'fp8');
    const W = buildFp8(dir, s, [16, 8], 51);
    await checkAgainstReference(dir, 0, s, W, 52);
    const held = readLayer(openCheckpoint(dir), 0);
    const want = W.get('model.layers.0.mlp.experts.3.down_proj.weight')!;
    expect(Array.from(held.weights.down.subarray(3 * s.H * s.F))).toEqual(Array.from(want));
    const text = await inspect([dir], {});
    expect(text).toMatch(/F8_E4M3/);
    // Per expert: three 20×24 / 24×20 fp8 matrices and their 2×3 F32 scale tensors.
    expect(JSON.parse(await inspect([dir], { json: true })).bytesPerExpert).toBe(3 * (20 * 24 + 2 * 3 * 4));
  });

  test('no weight_block_size in quantization_config: 128×128 blocks', () => {
    const dir = path.join(tmp, 'fp8-default');
    const W = buildFp8(dir, s, [128, 128], 55, null);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).quantization_config.weight_block_size).toBeUndefined();
    const held = readLayer(openCheckpoint(dir), 0);
    expect(Array.from(held.weights.gate.subarray(0, s.F * s.H))).toEqual(Array.from(W.get('model.layers.0.mlp.experts.0.gate_proj.weight')!));
  });

  test('rows read by range pick their 128×128 blocks (200×300: partial last row and column blocks)', () => {
    const R = 200,
      C = 300;
    const vals = randomArray(rng(61), R * C, 3);
    const q = fp8Tensor('w', R, C, vals, 128, 128);
    const dir = path.join(tmp, 'fp8raw');
    fs.mkdirSync(dir, { recursive: true });
    writeSafetensorsCheckpoint(dir, {}, q.tensors, 1);
    const tm = readSafetensorsCheckpoint(dir).tensors;
    const w = tm.get('w')!,
      si = tm.get('w_scale_inv')!;
    const spec = {
      file: si.file,
      tensor: 'w_scale_inv',
      offset: si.offset,
      dtype: 'F32',
      rows: 2,
      cols: 3,
      blockRows: 128,
      blockCols: 128,
      weightRows: R,
      weightCols: C,
    };
    for (const [r0, n] of [
      [0, 200],
      [127, 2],
      [128, 72],
      [199, 1],
    ]) {
      const out = new Float32Array(n * C);
      callNative(() => addon.readTensorElements(w.file, w.offset + r0 * C, 'F8_E4M3', n * C, out, 0, 'w', spec, r0));
      expect(Array.from(out)).toEqual(Array.from(q.decoded.subarray(r0 * C, (r0 + n) * C)));
    }
  });

  // dtype 'native' → fp8 from the stored bytes: the expert file's panels hold the checkpoint's E4M3
  // bytes and fp32 scale_inv values bitwise (engine layout: per 128 inputs [128][32] codes, then 32
  // fp32 scales; packed_matrix.h), and the layer matches the reference of the decoded values to fp32
  // accumulation. H = 136, F = 40: partial 128-column blocks, two 128-row blocks in the down matrix.
  test('128×128 blocks, dtype native: fp8 panels hold the E4M3 bytes and scales bitwise; NaN codes refused', async () => {
    const s2: RefSpec = { ...s, H: 136, F: 40, sharedF: 40 };
    const dir = path.join(tmp, 'fp8-native');
    const W = buildFp8(dir, s2, [128, 128], 81);
    await checkAgainstReference(dir, 0, s2, W, 82, 5, 'native');
    const moe = await createMoeLayer({
      checkpoint: dir,
      layer: 0,
      threads: 2,
      dtype: 'native',
      offload: { capacity: 1 },
      cacheDir: path.join(tmp, 'cache-fp8'),
    });
    expect(moe.info().dtype).toBe('fp8');
    const ef = moe.expertStore!.file;
    moe.close();
    const ck = openCheckpoint(dir);
    const bytesOf = (name: string) => {
      const t = ck.tensors.get(name)!;
      const b = Buffer.alloc(t.byteLength);
      const fd = fs.openSync(t.file, 'r');
      fs.readSync(fd, b, 0, t.byteLength, t.offset);
      fs.closeSync(fd);
      return b;
    };
    const { H, F } = s2;
    const fp = Math.ceil(F / 16) * 16;
    for (let e = 0; e < s2.E; e++) {
      const eb = expertBytes(ef, e);
      const m = (n: string) => `model.layers.0.mlp.experts.${e}.${n}_proj.weight`;
      const [gate, up, down] = ['gate', 'up', 'down'].map((n) => bytesOf(m(n)));
      const [gs, us, ds] = ['gate', 'up', 'down'].map((n) => bytesOf(`${m(n)}_scale_inv`));
      // Checks every lane of a matrix: rows(p, l) → [codes, scales, row] of the checkpoint or null (zero lane).
      const check = (base: number, K: number, panels: number, rows: (p: number, l: number) => [Buffer, Buffer, number, number] | null) => {
        const panelBytes = Math.ceil(K / 128) * 4224;
        let bad = 0;
        for (let p = 0; p < panels; p++)
          for (let l = 0; l < 32; l++) {
            const src = rows(p, l);
            for (let k = 0; k < K; k++) {
              const blk = base + p * panelBytes + Math.floor(k / 128) * 4224;
              const code = eb[blk + (k % 128) * 32 + l],
                scale = eb.readUInt32LE(blk + 4096 + 4 * l);
              if (!src) bad += code !== 0 ? 1 : 0;
              else {
                const [c, sc, r, cols] = src;
                const want = k < cols ? c[r * cols + k] : 0;
                const wantScale = sc.readUInt32LE(4 * (Math.floor(r / 128) * Math.ceil(cols / 128) + Math.floor(k / 128)));
                bad += code !== want || (k < cols && scale !== wantScale) ? 1 : 0;
              }
            }
          }
        expect(bad).toBe(0);
        return panels * panelBytes;
      };
      const w13 = check(0, H, Math.ceil(F / 16), (p, l) => {
        const f = p * 16 + (l & 15);
        return f < F ? [l < 16 ? gate : up, l < 16 ? gs : us, f, H] : null;
      });
      const w2 = check(w13, fp, Math.ceil(H / 32), (p, l) => (p * 32 + l < H ? [down, ds, p * 32 + l, F] : null));
      expect(eb.length).toBe(w13 + w2);
    }
    // An E4M3 NaN code (0x7F) in a stored weight: refused naming the tensor, row and element.
    const bad = path.join(tmp, 'fp8-nan');
    fs.cpSync(dir, bad, { recursive: true });
    const t = ck.tensors.get('model.layers.0.mlp.experts.2.up_proj.weight')!;
    const file = path.join(bad, path.basename(t.file));
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0x7f]), 0, 1, t.offset + 3 * H + 7);
    fs.closeSync(fd);
    await expect(createMoeLayer({ checkpoint: bad, layer: 0, threads: 2, dtype: 'fp8' })).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/tensor model\.layers\.0\.mlp\.experts\.2\.up_proj\.weight in .*, row 3: element 7 is an E4M3 NaN code/),
    });
  });

  test('bad scale tensors and configs: one clear error naming the file and tensor', async () => {
    const gateName = 'model.layers.0.mlp.experts.1.gate_proj.weight';
    const variants: Array<[string, (t: StTensor[]) => StTensor[], object | null, RegExp, string]> = [
      [
        'missing',
        (t) => t.filter((x) => x.name !== `${gateName}_scale_inv`),
        null,
        /F8_E4M3 tensor model\.layers\.0\.mlp\.experts\.1\.gate_proj\.weight has no scale tensor .*_scale_inv/,
        'ERR_CORRUPT_FILE',
      ],
      [
        'wrong shape',
        (t) => t.map((x) => (x.name === `${gateName}_scale_inv` ? { ...x, shape: [1, 6], bytes: Buffer.alloc(24, 0x3c) } : x)),
        null,
        /scale tensor .*experts\.1\.gate_proj\.weight_scale_inv has shape \[1, 6\] but .* \[20, 24\] in 16×8 blocks needs \[2, 3\]/,
        'ERR_CORRUPT_FILE',
      ],
      [
        'NaN scale',
        (t) => t.map((x) => (x.name === `${gateName}_scale_inv` ? { ...x, bytes: Buffer.from(new Float32Array([1, 1, NaN, 1, 1, 1]).buffer) } : x)),
        null,
        /tensor model\.layers\.0\.mlp\.experts\.1\.gate_proj\.weight_scale_inv in .*\.safetensors holds NaN at element 2/,
        'ERR_CORRUPT_FILE',
      ],
      ['unknown method', (t) => t, { quant_method: 'awq', bits: 4 }, /quant_method "awq" \(known: fp8, mxfp4\)/, 'ERR_INVALID_OPTION'],
      ['no config', (t) => t, {}, /is F8_E4M3 but config\.json has no quantization_config with quant_method "fp8"/, 'ERR_CORRUPT_FILE'],
    ];
    for (const [label, edit, qc, msg, code] of variants) {
      const dir = path.join(tmp, `fp8-bad-${label.replace(/ /g, '-')}`);
      const tensors: StTensor[] = [];
      for (const t of logicalTensors(s, 0, rng(70))) {
        if (t.name.endsWith('gate.weight') || t.name.endsWith('bias'))
          tensors.push({ name: t.name, dtype: 'F32', shape: t.shape, bytes: Buffer.from(Float32Array.from(t.values).buffer) });
        else tensors.push(...fp8Tensor(t.name, t.shape[0], t.shape[1], t.values, 16, 8).tensors);
      }
      const cfg = dsv3(s, [16, 8]) as Record<string, unknown>;
      if (qc && Object.keys(qc).length) cfg.quantization_config = qc;
      else if (qc) delete cfg.quantization_config;
      writeSafetensorsCheckpoint(dir, cfg, edit(tensors), 1);
      await expect(createMoeLayer({ checkpoint: dir, layer: 0, threads: 2 })).rejects.toMatchObject({ code, message: expect.stringMatching(msg) });
    }
  });
});

describe('moecap inspect --error', () => {
  test('hand-checkable: every expert weight ±1/3 in F32 → bf16 and int8 errors computed by hand; Q4_0 → int4 exact', async () => {
    const s: RefSpec = { family: 'mixtral', H: 64, F: 32, E: 4, k: 2 };
    const dir = path.join(tmp, 'third');
    const r = rng(80);
    const tensors: StTensor[] = [];
    for (const t of logicalTensors(s, 0, r)) {
      const f = Float32Array.from(t.values, (v) => (t.name.includes('experts') ? (v < 0 ? -1 / 3 : 1 / 3) : v));
      tensors.push({ name: t.name, dtype: 'F32', shape: t.shape, bytes: Buffer.from(f.buffer) });
    }
    writeSafetensorsCheckpoint(
      dir,
      {
        architectures: ['MixtralForCausalLM'],
        hidden_size: 64,
        num_hidden_layers: 1,
        num_experts_per_tok: 2,
        hidden_act: 'silu',
        intermediate_size: 32,
        num_local_experts: 4,
      },
      tensors,
      1,
    );
    const j = JSON.parse(await inspect([dir], { json: true, error: true, dtype: 'bf16,int8' }));
    const third = Math.fround(1 / 3);
    const bfErr = Math.abs(bf16Value(bf16Bits(third)) - third);
    expect(bfErr).toBeGreaterThan(0);
    // int8: block max 1/3 → scale fp16(third/127), every value ±127·scale.
    const s8 = f16Value(f16Bits(Math.fround(third / 127)));
    const i8Err = Math.abs(Math.fround(127 * s8) - third);
    const rows = j.conversionError.rows as Array<{ kind: string; dtype: string; maxAbs: number; relRms: number; exact: boolean }>;
    expect(j.conversionError.experts).toEqual([0, 1, 2, 3]);
    expect(rows.find((x) => x.kind === 'router')).toMatchObject({ dtype: 'f32', maxAbs: 0, exact: true });
    for (const kind of ['gate', 'up', 'down']) {
      const bf = rows.find((x) => x.kind === kind && x.dtype === 'bf16')!;
      expect(bf.maxAbs).toBe(bfErr);
      expect(bf.relRms).toBeCloseTo(bfErr / third, 12);
      const i8 = rows.find((x) => x.kind === kind && x.dtype === 'int8')!;
      expect(i8.maxAbs).toBe(i8Err);
      expect(i8.relRms).toBeCloseTo(i8Err / third, 12);
    }
    const text = await inspect([dir], { error: true, dtype: 'bf16' });
    expect(text).toMatch(/gate\s+F32\s+bf16\s+\S+/);

    const g = path.join(tmp, 'err-q4.gguf');
    buildGguf(
      g,
      { family: 'qwen3_moe', H: 64, F: 32, E: 3, k: 2, normTopkProb: true },
      'qwen3moe',
      1,
      [0],
      [['qwen3moe.expert_feed_forward_length', 'u32', 32]],
      'Q4_0',
      rng(81),
    );
    const qt = await inspect([g], { error: true, dtype: 'int4,bf16' });
    expect(qt).toMatch(/gate\s+Q4_0\s+int4\s+0\s+0\s+exact/);
    expect(qt).toMatch(/down\s+Q4_0\s+int4\s+0\s+0\s+exact/);
    expect(qt).toMatch(/router\s+F32\s+f32\s+0\s+0\s+exact/);
  });

  test('--dtype without --error and unknown dtypes are usage errors', async () => {
    const dir = path.join(tmp, 'third');
    await expect(
      inspectCommand.run({ options: { dtype: 'int4' }, positional: [dir], given: new Set(['dtype']) }, { out: () => {}, err: () => {} }),
    ).rejects.toMatchObject({
      code: 'ERR_USAGE',
    });
    await expect(
      inspectCommand.run({ options: { error: true, dtype: 'fp4' }, positional: [dir], given: new Set(['error', 'dtype']) }, { out: () => {}, err: () => {} }),
    ).rejects.toMatchObject({ code: 'ERR_USAGE', message: expect.stringMatching(/unknown dtype "fp4"/) });
  });
});
