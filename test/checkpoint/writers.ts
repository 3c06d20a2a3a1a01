// Writes tiny checkpoints in the exact on-disk layouts: safetensors (u64 LE header length, JSON
// header, data) with an optional shard index, and GGUF v3 (typed metadata, tensor infos with ggml
// dimension order, aligned data). Also the dtype encoders/decoders the tests check against.
import * as fs from 'fs';
import * as path from 'path';

// ------------------------------------------------------------------ element encodings

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
export function bf16Value(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}
/** IEEE half from its bits, computed in doubles (exact). */
export function f16Value(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f,
    m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
/** Nearest half (ties to even) by search over the finite halves: slow, independent, fine for tests. */
const HALVES: Array<[number, number]> = [];
for (let b = 0; b < 0x7c00; b++) HALVES.push([f16Value(b), b]);
export function f16Bits(x: number): number {
  const a = Math.abs(x);
  let lo = 0,
    hi = HALVES.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (HALVES[mid][0] <= a) lo = mid;
    else hi = mid - 1;
  }
  let b = HALVES[lo][1];
  if (lo + 1 < HALVES.length) {
    const d0 = a - HALVES[lo][0],
      d1 = HALVES[lo + 1][0] - a;
    if (d1 < d0 || (d1 === d0 && (HALVES[lo + 1][1] & 1) === 0)) b = HALVES[lo + 1][1];
  }
  return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | b;
}

export type DiskDType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q4_K' | 'Q5_K' | 'Q6_K';
type GgmlQuant = 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q4_K' | 'Q5_K' | 'Q6_K';

/** Encodes values; returns the bytes and the exact fp32 values the file now holds. */
export function encode(values: ArrayLike<number>, dtype: DiskDType): { bytes: Buffer; decoded: Float32Array } {
  const n = values.length;
  const decoded = new Float32Array(n);
  if (dtype === 'F32') {
    const b = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) {
      b.writeFloatLE(values[i], i * 4);
      decoded[i] = b.readFloatLE(i * 4);
    }
    return { bytes: b, decoded };
  }
  if (dtype === 'F16' || dtype === 'BF16') {
    const b = Buffer.alloc(n * 2);
    for (let i = 0; i < n; i++) {
      const bits = dtype === 'F16' ? f16Bits(values[i]) : bf16Bits(values[i]);
      b.writeUInt16LE(bits, i * 2);
      decoded[i] = dtype === 'F16' ? f16Value(bits) : bf16Value(bits);
    }
    return { bytes: b, decoded };
  }
  if (dtype in GGML_QUANT_BLOCK) return encodeGgmlQuant(values, dtype as GgmlQuant);
  if (n % 32 !== 0) throw new Error('Q8_0 needs whole 32-element blocks');
  const b = Buffer.alloc((n / 32) * 34);
  for (let blk = 0; blk < n / 32; blk++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[blk * 32 + j]));
    const dBits = f16Bits(amax / 127);
    const d = f16Value(dBits);
    b.writeUInt16LE(dBits, blk * 34);
    for (let j = 0; j < 32; j++) {
      const q = d === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(values[blk * 32 + j] / d)));
      b.writeInt8(q, blk * 34 + 2 + j);
      decoded[blk * 32 + j] = Math.fround(q * d);
    }
  }
  return { bytes: b, decoded };
}

// ------------------------------------------------------------------ ggml Q4_0 … Q6_K

/** [elements, bytes] of one block: 32 (Q4_0, Q4_1, Q5_0, Q5_1) or 256 (Q4_K, Q5_K, Q6_K) elements. */
export const GGML_QUANT_BLOCK = {
  Q4_0: [32, 18],
  Q4_1: [32, 20],
  Q5_0: [32, 22],
  Q5_1: [32, 24],
  Q4_K: [256, 144],
  Q5_K: [256, 176],
  Q6_K: [256, 210],
} as const;

/**
 * The fp32 values a ggml block holds, decoded in doubles from the format's definition (ggml's
 * block_q4_0 / q4_1 / q5_0 / q5_1 / q4_K / q5_K / q6_K) and rounded once to fp32 (each formula is
 * one rounding of exact products when the fp16 scales stay within a few binades of each other, as
 * the tests' do).
 */
export function decodeGgmlBlock(dtype: GgmlQuant, b: Buffer, at: number, out: Float32Array, o: number): void {
  if (dtype === 'Q4_0' || dtype === 'Q4_1' || dtype === 'Q5_0' || dtype === 'Q5_1') {
    // d [, m] [, u32 of fifth bits], then 16 bytes: byte j = element j (low nibble), j + 16 (high).
    const withMin = dtype === 'Q4_1' || dtype === 'Q5_1',
      fifth = dtype === 'Q5_0' || dtype === 'Q5_1';
    const d = f16Value(b.readUInt16LE(at)),
      m = withMin ? f16Value(b.readUInt16LE(at + 2)) : 0;
    const qhAt = at + (withMin ? 4 : 2),
      qsAt = qhAt + (fifth ? 4 : 0);
    const qh = fifth ? b.readUInt32LE(qhAt) : 0;
    const offset = dtype === 'Q4_0' ? 8 : dtype === 'Q5_0' ? 16 : 0;
    for (let i = 0; i < 32; i++) {
      const byte = b[qsAt + (i % 16)];
      const level = (i < 16 ? byte & 15 : byte >> 4) | (fifth ? ((qh >>> i) & 1) << 4 : 0);
      out[o + i] = Math.fround(withMin ? (level - offset) * d + m : (level - offset) * d);
    }
    return;
  }
  if (dtype === 'Q4_K' || dtype === 'Q5_K') {
    const five = dtype === 'Q5_K';
    const d = f16Value(b.readUInt16LE(at)),
      dmin = f16Value(b.readUInt16LE(at + 2));
    const sc = (j: number): [number, number] => {
      const q = (k: number) => b[at + 4 + k];
      return j < 4 ? [q(j) & 63, q(j + 4) & 63] : [(q(j + 4) & 15) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
    };
    for (let i = 0; i < 256; i++) {
      const sub = i >> 5; // 32-element sub-block: its 6-bit scale and min; Q5_K: bit `sub` of qh[i & 31] is the fifth bit
      const byte = b[at + (five ? 48 : 16) + (sub >> 1) * 32 + (i & 31)];
      const q = (sub & 1 ? byte >> 4 : byte & 15) | (five ? ((b[at + 16 + (i & 31)] >> sub) & 1) << 4 : 0);
      const [s, m] = sc(sub);
      out[o + i] = Math.fround(d * s * q - dmin * m);
    }
    return;
  }
  const d = f16Value(b.readUInt16LE(at + 208));
  for (let i = 0; i < 256; i++) {
    const half = i >> 7,
      r = i & 127,
      quarter = r >> 5,
      l = r & 31;
    // quarter 0/1: low nibbles of ql[l] / ql[l+32]; 2/3: their high nibbles; qh bits 2·quarter.
    const qlByte = b[at + half * 64 + l + (quarter & 1) * 32];
    const low = quarter < 2 ? qlByte & 15 : qlByte >> 4;
    const high = (b[at + 128 + half * 32 + l] >> (2 * quarter)) & 3;
    const scale = b.readInt8(at + 192 + half * 8 + (l >> 4) + 2 * quarter);
    out[o + i] = Math.fround(d * scale * ((low | (high << 4)) - 32));
  }
}

/** Rough quantisers for building test checkpoints (any valid block will do: the tests use the decoded values). */
function encodeGgmlQuant(values: ArrayLike<number>, dtype: GgmlQuant): { bytes: Buffer; decoded: Float32Array } {
  const [be, bb] = GGML_QUANT_BLOCK[dtype];
  const n = values.length;
  if (n % be !== 0) throw new Error(`${dtype} needs whole ${be}-element blocks`);
  const b = Buffer.alloc((n / be) * bb);
  const decoded = new Float32Array(n);
  const v = (i: number) => values[i];
  for (let blk = 0; blk < n / be; blk++) {
    const at = blk * bb,
      i0 = blk * be;
    if (dtype === 'Q4_1' || dtype === 'Q5_0' || dtype === 'Q5_1') {
      // Q5_0: symmetric levels −16..15 around 0; Q4_1/Q5_1: levels 0..max from the block's min m.
      const top = dtype === 'Q4_1' ? 15 : 31,
        withMin = dtype !== 'Q5_0';
      let lo = Infinity,
        hi = -Infinity,
        amax = 0;
      for (let j = 0; j < 32; j++) {
        lo = Math.min(lo, v(i0 + j));
        hi = Math.max(hi, v(i0 + j));
        amax = Math.max(amax, Math.abs(v(i0 + j)));
      }
      const dBits = f16Bits(withMin ? (hi - lo) / top : amax / 16),
        d = f16Value(dBits);
      const mBits = f16Bits(lo),
        m = withMin ? f16Value(mBits) : 0;
      b.writeUInt16LE(dBits, at);
      if (withMin) b.writeUInt16LE(mBits, at + 2);
      const qhAt = at + (withMin ? 4 : 2),
        qsAt = qhAt + (dtype === 'Q4_1' ? 0 : 4);
      let qh = 0;
      for (let j = 0; j < 32; j++) {
        const q = d === 0 ? (withMin ? 0 : 16) : Math.max(0, Math.min(top, Math.round((v(i0 + j) - m) / d) + (withMin ? 0 : 16)));
        b[qsAt + (j % 16)] |= j < 16 ? q & 15 : (q & 15) << 4;
        qh |= (q >> 4) << j;
      }
      if (dtype !== 'Q4_1') b.writeUInt32LE(qh >>> 0, qhAt);
    } else if (dtype === 'Q4_0') {
      let m = 0;
      for (let j = 0; j < 32; j++) if (Math.abs(v(i0 + j)) > Math.abs(m)) m = v(i0 + j);
      const dBits = f16Bits(m / -8),
        d = f16Value(dBits);
      b.writeUInt16LE(dBits, at);
      for (let j = 0; j < 32; j++) {
        const q = d === 0 ? 8 : Math.max(0, Math.min(15, Math.round(v(i0 + j) / d) + 8));
        b[at + 2 + (j % 16)] |= j < 16 ? q : q << 4;
      }
    } else if (dtype === 'Q4_K' || dtype === 'Q5_K') {
      // Per sub-block: min ≤ 0 and a scale covering [min, max]; both 6-bit multiples of d, dmin.
      const top = dtype === 'Q5_K' ? 31 : 15,
        qsAt = at + (dtype === 'Q5_K' ? 48 : 16);
      const mins: number[] = [],
        scales: number[] = [];
      for (let s = 0; s < 8; s++) {
        let lo = 0,
          hi = 0;
        for (let j = 0; j < 32; j++) {
          lo = Math.min(lo, v(i0 + 32 * s + j));
          hi = Math.max(hi, v(i0 + 32 * s + j));
        }
        mins.push(-lo);
        scales.push((hi - lo) / top);
      }
      const dBits = f16Bits(Math.max(...scales) / 63),
        mBits = f16Bits(Math.max(...mins) / 63);
      const d = f16Value(dBits),
        dmin = f16Value(mBits);
      b.writeUInt16LE(dBits, at);
      b.writeUInt16LE(mBits, at + 2);
      for (let s = 0; s < 8; s++) {
        const sc = d === 0 ? 0 : Math.min(63, Math.round(scales[s] / d)),
          mn = dmin === 0 ? 0 : Math.min(63, Math.round(mins[s] / dmin));
        if (s < 4) {
          b[at + 4 + s] |= sc;
          b[at + 8 + s] |= mn;
        } else {
          b[at + 8 + s] |= (sc & 15) | ((mn & 15) << 4);
          b[at + 4 + s - 4] |= (sc >> 4) << 6;
          b[at + 4 + s] |= (mn >> 4) << 6;
        }
        for (let j = 0; j < 32; j++) {
          const q = sc === 0 ? 0 : Math.max(0, Math.min(top, Math.round((v(i0 + 32 * s + j) + dmin * mn) / (d * sc))));
          b[qsAt + (s >> 1) * 32 + j] |= s & 1 ? (q & 15) << 4 : q & 15;
          if (q > 15) b[at + 16 + j] |= 1 << s; // Q5_K's fifth bit: bit s of qh[j]
        }
      }
    } else {
      // Q6_K: 16 sub-blocks of 16 with int8 scales; q ∈ [0, 63] stored as low nibble + 2 high bits.
      const sub: number[] = [];
      for (let s = 0; s < 16; s++) {
        let a = 0;
        for (let j = 0; j < 16; j++) a = Math.max(a, Math.abs(v(i0 + 16 * s + j)));
        sub.push(a / 31);
      }
      const dBits = f16Bits(Math.max(...sub) / 127),
        d = f16Value(dBits);
      b.writeUInt16LE(dBits, at + 208);
      for (let i = 0; i < 256; i++) {
        const half = i >> 7,
          r = i & 127,
          quarter = r >> 5,
          l = r & 31;
        const scIdx = half * 8 + (l >> 4) + 2 * quarter;
        const sc = d === 0 ? 0 : Math.min(127, Math.round(sub[Math.floor(i / 16)] / d));
        b.writeInt8(sc, at + 192 + scIdx); // the same value for every element of its 16
        const q = sc === 0 ? 32 : Math.max(0, Math.min(63, Math.round(v(i0 + i) / (d * sc)) + 32));
        const qlAt = at + half * 64 + l + (quarter & 1) * 32;
        b[qlAt] |= quarter < 2 ? q & 15 : (q & 15) << 4;
        b[at + 128 + half * 32 + l] |= (q >> 4) << (2 * quarter);
      }
    }
    decodeGgmlBlock(dtype, b, at, decoded, i0);
  }
  return { bytes: b, decoded };
}

// ------------------------------------------------------------------ safetensors

export interface StTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

/** A .npy file as numpy writes it: version 1 (2-byte header length) or 2 (4-byte), header padded to 64. */
export function npyBytes(descr: string, shape: number[], data: Buffer, version: 1 | 2 = 1): Buffer {
  const pre = Buffer.alloc(version === 1 ? 10 : 12);
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((pre.length + h.length + 1) % 64) h += ' ';
  h += '\n';
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = version;
  if (version === 1) pre.writeUInt16LE(h.length, 8);
  else pre.writeUInt32LE(h.length, 8);
  return Buffer.concat([pre, Buffer.from(h, 'latin1'), data]);
}

export function safetensorsBytes(tensors: StTensor[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // data aligned to 8, padded with spaces
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...tensors.map((t) => t.bytes)]);
}

/** Writes one file, or `shards` files plus model.safetensors.index.json. */
export function writeSafetensorsCheckpoint(dir: string, config: object, tensors: StTensor[], shards = 1): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  if (shards === 1) {
    fs.writeFileSync(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors, { format: 'pt' }));
    return;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const part = tensors.filter((_, i) => i % shards === s);
    for (const t of part) {
      weightMap[t.name] = name;
      total += t.bytes.length;
    }
    fs.writeFileSync(path.join(dir, name), safetensorsBytes(part, { format: 'pt' }));
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
}

// ------------------------------------------------------------------ GGUF v3

export type GgufKv = [key: string, type: 'u32' | 'f32' | 'bool' | 'string' | 'u64' | 'i32' | 'strings' | 'u32s', value: unknown];

export interface GgufTensor {
  name: string;
  /** ggml order: fastest dimension first. */
  dims: number[];
  type: DiskDType;
  bytes: Buffer;
  /** Overrides for malformed files: the data offset and ggml type id written in the tensor info. */
  offset?: number;
  typeId?: number;
}

const GGML_TYPE_ID: Record<DiskDType, number> = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 };

function ggufString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b]);
}
function u32b(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
function u64b(v: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

function kvBytes([key, type, value]: GgufKv): Buffer {
  const parts = [ggufString(key)];
  switch (type) {
    case 'u32':
      parts.push(u32b(4), u32b(value as number));
      break;
    case 'i32': {
      const b = Buffer.alloc(4);
      b.writeInt32LE(value as number);
      parts.push(u32b(5), b);
      break;
    }
    case 'f32': {
      const b = Buffer.alloc(4);
      b.writeFloatLE(value as number);
      parts.push(u32b(6), b);
      break;
    }
    case 'bool':
      parts.push(u32b(7), Buffer.from([value ? 1 : 0]));
      break;
    case 'string':
      parts.push(u32b(8), ggufString(value as string));
      break;
    case 'u64':
      parts.push(u32b(10), u64b(value as number));
      break;
    case 'strings':
      parts.push(u32b(9), u32b(8), u64b((value as string[]).length), ...(value as string[]).map(ggufString));
      break;
    case 'u32s':
      parts.push(u32b(9), u32b(4), u64b((value as number[]).length), ...(value as number[]).map(u32b));
      break;
  }
  return Buffer.concat(parts);
}

export function ggufBytes(kvs: GgufKv[], tensors: GgufTensor[], alignment = 32): Buffer {
  const head: Buffer[] = [Buffer.from('GGUF'), u32b(3), u64b(tensors.length), u64b(kvs.length), ...kvs.map(kvBytes)];
  const datas: Buffer[] = [];
  let at = 0;
  for (const t of tensors) {
    head.push(ggufString(t.name), u32b(t.dims.length), ...t.dims.map((d) => u64b(d)), u32b(t.typeId ?? GGML_TYPE_ID[t.type]), u64b(t.offset ?? at));
    const pad = (alignment - (t.bytes.length % alignment)) % alignment;
    datas.push(t.bytes, Buffer.alloc(pad));
    at += t.bytes.length + pad;
  }
  const h = Buffer.concat(head);
  const hpad = (alignment - (h.length % alignment)) % alignment;
  return Buffer.concat([h, Buffer.alloc(hpad), ...datas]);
}

// ------------------------------------------------------------------ random values

/** Seeded uniform PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomArray(r: () => number, n: number, scale: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}
