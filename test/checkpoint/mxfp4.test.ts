// gpt-oss's MXFP4 release layout (`*_blocks` + `*_scales`, E8M0 per 32 E2M1 values, element 2j in
// the low nibble of byte j): decoded exactly, converted to the engine's int8 block-32 bitwise
// (levels × fp16 scale = the MXFP4 value), and a tiny checkpoint in that layout run against the
// independent fp64 reference of gpt-oss.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer } from '../../lib';
import { checkpointReadCounters, openCheckpoint, readLayer } from '../../lib/checkpoint/checkpoint';
import { loadAddon } from '../../lib/native/loader';
import { referenceForward, type RefSpec, type Weights } from './family_reference';
import { encode, f16Value, ggufBytes, randomArray, rng, writeSafetensorsCheckpoint, type GgufKv, type GgufTensor, type StTensor } from './writers';

interface Hooks {
  quantiseInt8Blocks(v: Float32Array): { levels: Int8Array; scales: Uint16Array };
  conversionError(v: Float32Array, rows: number, cols: number, dtype: string): { maxAbs: number };
  readMxfp4Elements(bf: string, bo: number, sf: string, so: number, n: number, out: Float32Array, at: number, name: string): void;
}
const addon = loadAddon() as unknown as Hooks;

// The OCP MX E2M1 values by nibble (bit 3 = sign), and E8M0 = 2^(e − 127).
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const mxValue = (nib: number, e: number) => (nib & 8 ? -1 : 1) * E2M1[nib & 7] * 2 ** (e - 127);

/** Random MXFP4 [rows, cols]: blocks (rows·cols/2 bytes) and scales (rows·cols/32), and their values. */
function randomMxfp4(r: () => number, rows: number, cols: number, eLo: number, eHi: number) {
  const nb = (rows * cols) / 32;
  const blocks = Buffer.alloc(nb * 16),
    scales = Buffer.alloc(nb),
    values = new Float32Array(rows * cols);
  for (let b = 0; b < nb; b++) {
    scales[b] = eLo + Math.floor(r() * (eHi - eLo + 1));
    for (let j = 0; j < 16; j++) {
      const lo = Math.floor(r() * 16),
        hi = Math.floor(r() * 16);
      blocks[b * 16 + j] = lo | (hi << 4);
      values[b * 32 + 2 * j] = mxValue(lo, scales[b]);
      values[b * 32 + 2 * j + 1] = mxValue(hi, scales[b]);
    }
  }
  return { blocks, scales, values };
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-mxfp4-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('MXFP4 → fp32 exact, and → int8 block-32 bitwise for every E2M1 value and every E8M0 scale in fp16 range', () => {
  // Every nibble pair under every scale 2^(e−127), e ∈ [104, 143]: levels × scale = value exactly.
  const r = rng(5);
  for (let e = 104; e <= 143; e++) {
    const blocks = Buffer.alloc(16 * 4),
      scales = Buffer.from([e, e, e, e]);
    for (let i = 0; i < blocks.length; i++) blocks[i] = i < 16 ? i | ((15 - i) << 4) : Math.floor(r() * 256);
    const file = path.join(tmp, `mx-${e}.bin`);
    fs.writeFileSync(file, Buffer.concat([blocks, scales]));
    const got = new Float32Array(128);
    addon.readMxfp4Elements(file, 0, file, blocks.length, 128, got, 0, 'probe');
    for (let i = 0; i < 128; i++) {
      const byte = blocks[i >> 1];
      expect(got[i]).toBe(Math.fround(mxValue(i & 1 ? byte >> 4 : byte & 15, e)));
    }
    const q = addon.quantiseInt8Blocks(got);
    // Equal as numbers (int8 has no −0: a −0 weight becomes level 0, the same product).
    const differ = Array.from(got).filter((v, i) => q.levels[i] * f16Value(q.scales[i >> 5]) !== v);
    expect(differ).toEqual([]);
  }
  // A scale below fp16's range (2^−24) cannot be exact: say so by measuring, not by claiming.
  const tiny = Float32Array.from({ length: 32 }, (_, i) => mxValue(i % 16, 100));
  const q = addon.quantiseInt8Blocks(tiny);
  expect(tiny.some((v, i) => q.levels[i] * f16Value(q.scales[0]) !== v)).toBe(true);
  // E8M0 255 is NaN: a corrupt file, named.
  const bad = path.join(tmp, 'mx-nan.bin');
  fs.writeFileSync(bad, Buffer.concat([Buffer.alloc(16, 0x11), Buffer.from([255])]));
  expect(() => addon.readMxfp4Elements(bad, 0, bad, 16, 32, new Float32Array(32), 0, 'w')).toThrow(/NaN/);
});

test('gpt-oss MXFP4 release layout: f32 and int8 layers against the fp64 reference; int8 weights equal the MXFP4 values', async () => {
  const s: RefSpec = { family: 'gpt_oss', H: 64, F: 32, E: 4, k: 2, swigluLimit: 0.5 };
  const { H, F, E } = s;
  const r = rng(77);
  const p = 'model.layers.0.mlp.';
  const W: Weights = new Map();
  const tensors: StTensor[] = [];
  const dense = (name: string, shape: number[], scale: number) => {
    const { bytes, decoded } = encode(
      randomArray(
        r,
        shape.reduce((a, b) => a * b, 1),
        scale,
      ),
      'BF16',
    );
    tensors.push({ name, dtype: 'BF16', shape, bytes });
    W.set(name, decoded);
  };
  dense(`${p}router.weight`, [E, H], 3 / Math.sqrt(H));
  dense(`${p}router.bias`, [E], 0.5);
  dense(`${p}experts.gate_up_proj_bias`, [E, 2 * F], 0.3);
  dense(`${p}experts.down_proj_bias`, [E, H], 0.3);
  // Stored [out, in]: gate_up rows 2F (interleaved) of H, down rows H of F. The modelling code's
  // parameters are their transposes ([E, H, 2F], [E, F, H]), which the reference reads.
  const mx = (name: string, rows: number, cols: number) => {
    const m = randomMxfp4(r, E * rows, cols, 119, 124);
    tensors.push({ name: `${name}_blocks`, dtype: 'U8', shape: [E, rows, cols / 32, 16], bytes: m.blocks });
    tensors.push({ name: `${name}_scales`, dtype: 'U8', shape: [E, rows, cols / 32], bytes: m.scales });
    const t = new Float32Array(E * rows * cols);
    for (let e = 0; e < E; e++)
      for (let i = 0; i < rows; i++) for (let c = 0; c < cols; c++) t[(e * cols + c) * rows + i] = m.values[(e * rows + i) * cols + c];
    W.set(name, t);
    return m.values;
  };
  const gu = mx(`${p}experts.gate_up_proj`, 2 * F, H);
  mx(`${p}experts.down_proj`, H, F);
  const dir = path.join(tmp, 'gpt-oss-mxfp4');
  const cfg = {
    architectures: ['GptOssForCausalLM'],
    hidden_size: H,
    intermediate_size: F,
    num_hidden_layers: 1,
    num_local_experts: E,
    num_experts_per_tok: s.k,
    hidden_act: 'silu',
    swiglu_limit: 0.5,
    quantization_config: { quant_method: 'mxfp4', modules_to_not_convert: ['model.layers.*.self_attn', 'model.layers.*.mlp.router'] },
  };
  writeSafetensorsCheckpoint(dir, cfg, tensors, 1);
  const x = Float32Array.from(randomArray(rng(8), 6 * H, 1));
  const ref = referenceForward(s, W, 0, x);
  expect(ref.clamped).toBeGreaterThan(0);
  const err = async (dtype: 'f32' | 'int8' | 'native', want: string = dtype) => {
    const moe = await createMoeLayer({ checkpoint: dir, layer: 0, threads: 2, dtype, poison: true });
    expect(moe.info().dtype).toBe(want);
    const res = await moe.forward(x);
    moe.close();
    for (let t = 0; t < 6; t++) expect(Array.from(res.expertIds.subarray(t * s.k, (t + 1) * s.k)).sort((a, b) => a - b)).toEqual(ref.ids[t]);
    let maxRef = 0,
      maxErr = 0;
    for (let i = 0; i < ref.out.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
      maxErr = Math.max(maxErr, Math.abs(res.output[i] - ref.out[i]));
    }
    return maxErr / maxRef;
  };
  expect(await err('f32')).toBeLessThan(2e-5);
  // int8: the weights are the MXFP4 values exactly (each gate/up row packed as the engine packs it),
  // so the remaining error is the int8 activations'.
  for (let row = 0; row < E * 2 * F; row++) {
    const v = gu.subarray(row * H, (row + 1) * H);
    const q = addon.quantiseInt8Blocks(Float32Array.from(v));
    expect(Array.from(v).filter((w, i) => q.levels[i] * f16Value(q.scales[i >> 5]) !== w)).toEqual([]);
  }
  expect(await err('int8')).toBeLessThan(2e-2);
  // dtype 'native' → mxfp4: the engine's E2M1 × E8M0 packing holds every MXFP4 value exactly (a
  // block whose largest code is ±4 or ±6 keeps its scale byte and codes; a smaller one is the same
  // values on a finer scale), so again only the int8 activations' error remains.
  for (const m of [gu]) expect(addon.conversionError(m, m.length / H, H, 'mxfp4').maxAbs).toBe(0);
  expect(await err('native', 'mxfp4')).toBeLessThan(2e-2);
  // Streamed expert by expert (gate = the even rows, up = the odd ones, read per expert with their
  // scales; resident and offloaded): bitwise the whole-read layer (readLayer decodes the tensors
  // whole and splits the rows in TypeScript), with at most three experts' bytes staged at once.
  const whole = await createMoeLayer({ ...readLayer(openCheckpoint(dir), 0), dtype: 'f32', threads: 2 });
  const want = (await whole.forward(x)).output;
  whole.close();
  const expertBytes = (2 * F * H + H * F) * (1 / 2 + 1 / 32);
  for (const offload of [undefined, { capacity: 1, path: path.join(tmp, 'gpt-oss-mxfp4.experts') }]) {
    checkpointReadCounters(true);
    const before = checkpointReadCounters().bytes;
    const moe = await createMoeLayer({ checkpoint: dir, layer: 0, dtype: 'f32', threads: 2, poison: true, offload });
    const after = checkpointReadCounters();
    const got = (await moe.forward(x)).output;
    moe.close();
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    expect(after.bytes - before).toBeGreaterThanOrEqual(E * expertBytes);
    expect(after.bytes - before).toBeLessThan(E * expertBytes * 1.5);
    expect(after.stagedPeakBytes).toBeGreaterThanOrEqual(expertBytes);
    expect(after.stagedPeakBytes).toBeLessThanOrEqual(3 * expertBytes);
  }
});

test('gpt-oss GGUF (llama.cpp layout): MXFP4 experts (type 39, low nibbles = first 16), biases, fixed limit 7 against the fp64 reference', async () => {
  const s: RefSpec = { family: 'gpt_oss', H: 64, F: 32, E: 4, k: 2 };
  const { H, F, E } = s;
  const r = rng(91);
  const KV = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
  // ggml block_mxfp4 rows: per 32 values one E8M0 byte then 16 bytes; value = kvalues·2^(e − 128).
  const ggmlMx = (rows: number, cols: number) => {
    const nb = (rows * cols) / 32;
    const bytes = Buffer.alloc(nb * 17),
      values = new Float32Array(rows * cols);
    for (let b = 0; b < nb; b++) {
      const e = 125 + Math.floor(r() * 4);
      bytes[b * 17] = e;
      for (let j = 0; j < 16; j++) {
        const lo = Math.floor(r() * 16),
          hi = Math.floor(r() * 16);
        bytes[b * 17 + 1 + j] = lo | (hi << 4);
        values[b * 32 + j] = KV[lo] * 2 ** (e - 128);
        values[b * 32 + 16 + j] = KV[hi] * 2 ** (e - 128);
      }
    }
    return { bytes, values };
  };
  const f32 = (n: number, scale: number) => Float32Array.from(randomArray(r, n, scale));
  const router = f32(E * H, 3 / Math.sqrt(H)),
    rb = f32(E, 0.5),
    gb = f32(E * F, 0.3),
    ub = f32(E * F, 0.3),
    db = f32(E * H, 0.3);
  const gate = ggmlMx(E * F, H),
    up = ggmlMx(E * F, H),
    down = ggmlMx(E * H, F);
  const buf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const tensors: GgufTensor[] = [
    { name: 'blk.0.ffn_gate_inp.weight', dims: [H, E], type: 'F32', bytes: buf(router) },
    { name: 'blk.0.ffn_gate_inp.bias', dims: [E], type: 'F32', bytes: buf(rb) },
    { name: 'blk.0.ffn_gate_exps.weight', dims: [H, F, E], type: 'F32', typeId: 39, bytes: gate.bytes },
    { name: 'blk.0.ffn_up_exps.weight', dims: [H, F, E], type: 'F32', typeId: 39, bytes: up.bytes },
    { name: 'blk.0.ffn_down_exps.weight', dims: [F, H, E], type: 'F32', typeId: 39, bytes: down.bytes },
    { name: 'blk.0.ffn_gate_exps.bias', dims: [F, E], type: 'F32', bytes: buf(gb) },
    { name: 'blk.0.ffn_up_exps.bias', dims: [F, E], type: 'F32', bytes: buf(ub) },
    { name: 'blk.0.ffn_down_exps.bias', dims: [H, E], type: 'F32', bytes: buf(db) },
  ];
  const kv: GgufKv[] = [
    ['general.architecture', 'string', 'gpt-oss'],
    ['gpt-oss.block_count', 'u32', 1],
    ['gpt-oss.embedding_length', 'u32', H],
    ['gpt-oss.expert_count', 'u32', E],
    ['gpt-oss.expert_used_count', 'u32', s.k],
    ['gpt-oss.expert_feed_forward_length', 'u32', F],
  ];
  const file = path.join(tmp, 'gpt-oss.gguf');
  fs.writeFileSync(file, ggufBytes(kv, tensors));
  // The reference reads the modelling code's tensors: gate_up [E, H, 2F] interleaved, down [E, F, H].
  const p = 'model.layers.0.mlp.';
  const gu = new Float32Array(E * H * 2 * F),
    gub = new Float32Array(E * 2 * F),
    dn = new Float32Array(E * F * H);
  for (let e = 0; e < E; e++)
    for (let f = 0; f < F; f++) {
      gub[e * 2 * F + 2 * f] = gb[e * F + f];
      gub[e * 2 * F + 2 * f + 1] = ub[e * F + f];
      for (let h = 0; h < H; h++) {
        gu[(e * H + h) * 2 * F + 2 * f] = gate.values[(e * F + f) * H + h];
        gu[(e * H + h) * 2 * F + 2 * f + 1] = up.values[(e * F + f) * H + h];
        dn[(e * F + f) * H + h] = down.values[(e * H + h) * F + f];
      }
    }
  const W: Weights = new Map([
    [`${p}router.weight`, router],
    [`${p}router.bias`, rb],
    [`${p}experts.gate_up_proj`, gu],
    [`${p}experts.gate_up_proj_bias`, gub],
    [`${p}experts.down_proj`, dn],
    [`${p}experts.down_proj_bias`, db],
  ]);
  const x = Float32Array.from(randomArray(rng(12), 7 * H, 1));
  const ref = referenceForward(s, W, 0, x);
  expect(ref.clamped).toBeGreaterThan(0); // limit 7 acts on these larger weights
  const moe = await createMoeLayer({ checkpoint: file, layer: 0, threads: 2, poison: true, dtype: 'f32' });
  const res = await moe.forward(x);
  moe.close();
  for (let t = 0; t < 7; t++) expect(Array.from(res.expertIds.subarray(t * s.k, (t + 1) * s.k)).sort((a, b) => a - b)).toEqual(ref.ids[t]);
  let maxRef = 0,
    maxErr = 0;
  for (let i = 0; i < ref.out.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
    maxErr = Math.max(maxErr, Math.abs(res.output[i] - ref.out[i]));
  }
  expect(maxErr / maxRef).toBeLessThan(2e-5);

  // dtype 'native' → mxfp4, packed from the stored bytes: the expert file's panels hold the GGUF
  // E8M0 bytes and E2M1 nibbles themselves (engine layout: packed_matrix.h, quant_panel_layout.h).
  const nat = await createMoeLayer({ checkpoint: file, layer: 0, threads: 2, dtype: 'native', offload: { capacity: 1 }, cacheDir: path.join(tmp, 'cache-mx') });
  expect(nat.info().dtype).toBe('mxfp4');
  const natOut = (await nat.forward(x)).output;
  const ef = nat.expertStore!.file;
  nat.close();
  let natErr = 0;
  for (let i = 0; i < ref.out.length; i++) natErr = Math.max(natErr, Math.abs(natOut[i] - ref.out[i]));
  expect(natErr / maxRef).toBeLessThan(2e-2); // the int8 activation rows' error only
  // No dtype given: a checkpoint runs at its own precision, the same layer as 'native', bitwise.
  const dflt = await createMoeLayer({ checkpoint: file, layer: 0, threads: 2 });
  expect(dflt.info().dtype).toBe('mxfp4');
  expect(Array.from((await dflt.forward(x)).output)).toEqual(Array.from(natOut));
  dflt.close();
  for (let e = 0; e < E; e++) {
    const eb = expertBytesOf(ef, e);
    // [code, scale] of row `row` (of K inputs) of a ggml MXFP4 tensor, input k.
    const ggml = (t: Buffer, row: number, K: number, k: number) => {
      const at = (row * (K / 32) + Math.floor(k / 32)) * 17;
      const j = k % 32;
      return [j < 16 ? t[at + 1 + j] & 15 : t[at + 1 + j - 16] >> 4, t[at]];
    };
    // [code, scale] of panel p, lane l, input k of an engine mxfp4 matrix starting at `base`.
    const engine = (base: number, panelBytes: number, p: number, l: number, k: number) => {
      const b = Math.floor(k / 32),
        kk = k % 32;
      const pair = base + p * panelBytes + Math.floor(b / 2) * 1088;
      const byte = eb[pair + (b & 1) * 512 + Math.floor(kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
      return [l < 16 ? byte & 15 : byte >> 4, eb[pair + 1024 + (b & 1) * 32 + l]];
    };
    const w13Panel = Math.ceil(H / 64) * 1088;
    for (let p = 0; p < F / 16; p++)
      for (let l = 0; l < 32; l++)
        for (let k = 0; k < H; k++) expect(engine(0, w13Panel, p, l, k)).toEqual(ggml(l < 16 ? gate.bytes : up.bytes, e * F + p * 16 + (l & 15), H, k));
    const w2Panel = Math.ceil(F / 64) * 1088;
    for (let p = 0; p < H / 32; p++)
      for (let l = 0; l < 32; l++)
        for (let k = 0; k < F; k++) expect(engine((F / 16) * w13Panel, w2Panel, p, l, k)).toEqual(ggml(down.bytes, e * H + p * 32 + l, F, k));
    expect(eb.length).toBe((F / 16) * w13Panel + (H / 32) * w2Panel);
  }

  // A NaN scale byte (E8M0 0xFF) in the stored bytes: refused naming the file, tensor and row.
  const bad = Buffer.from(fs.readFileSync(file));
  const at = bad.indexOf(gate.bytes.subarray(0, 64));
  expect(at).toBeGreaterThan(0);
  bad[at + 17 * 5] = 0xff;
  const badFile = path.join(tmp, 'gpt-oss-nan.gguf');
  fs.writeFileSync(badFile, bad);
  await expect(createMoeLayer({ checkpoint: badFile, layer: 0, threads: 2, dtype: 'mxfp4' })).rejects.toMatchObject({
    code: 'ERR_CORRUPT_FILE',
    message: expect.stringMatching(/blk\.0\.ffn_gate_exps\.weight.*row 2: block 1 has the E8M0 scale 0xFF \(NaN\)/),
  });
});

/** Packed bytes of expert e of an engine expert file (header: 88 bytes, then {offset, size, xxh64} per expert). */
function expertBytesOf(file: string, e: number): Buffer {
  const b = fs.readFileSync(file);
  const at = 88 + 24 * e;
  const off = Number(b.readBigUInt64LE(at)),
    size = Number(b.readBigUInt64LE(at + 8));
  return b.subarray(off, off + size);
}
