// GGUF v3 (ggml / llama.cpp): magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
// metadata key/value pairs (typed; arrays may nest), tensor infos (name, dims fastest-first, ggml
// type, offset relative to the aligned data section), then the data at `general.alignment`
// (default 32). Everything is validated against the file size before any tensor data is read.
import * as fs from 'fs';
import { checkNoOverlap, corrupt, openForRead, readRange, type TensorEntry, type TensorMap } from './tensor_map';

export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** ggml tensor types: name, elements per block, bytes per block. */
export const GGML_TYPES: Readonly<Record<number, { name: string; block: number; bytes: number }>> = {
  0: { name: 'F32', block: 1, bytes: 4 },
  1: { name: 'F16', block: 1, bytes: 2 },
  2: { name: 'Q4_0', block: 32, bytes: 18 },
  3: { name: 'Q4_1', block: 32, bytes: 20 },
  6: { name: 'Q5_0', block: 32, bytes: 22 },
  7: { name: 'Q5_1', block: 32, bytes: 24 },
  8: { name: 'Q8_0', block: 32, bytes: 34 },
  9: { name: 'Q8_1', block: 32, bytes: 36 },
  10: { name: 'Q2_K', block: 256, bytes: 84 },
  11: { name: 'Q3_K', block: 256, bytes: 110 },
  12: { name: 'Q4_K', block: 256, bytes: 144 },
  13: { name: 'Q5_K', block: 256, bytes: 176 },
  14: { name: 'Q6_K', block: 256, bytes: 210 },
  15: { name: 'Q8_K', block: 256, bytes: 292 },
  16: { name: 'IQ2_XXS', block: 256, bytes: 66 },
  17: { name: 'IQ2_XS', block: 256, bytes: 74 },
  18: { name: 'IQ3_XXS', block: 256, bytes: 98 },
  19: { name: 'IQ1_S', block: 256, bytes: 50 },
  20: { name: 'IQ4_NL', block: 32, bytes: 18 },
  21: { name: 'IQ3_S', block: 256, bytes: 110 },
  22: { name: 'IQ2_S', block: 256, bytes: 82 },
  23: { name: 'IQ4_XS', block: 256, bytes: 136 },
  24: { name: 'I8', block: 1, bytes: 1 },
  25: { name: 'I16', block: 1, bytes: 2 },
  26: { name: 'I32', block: 1, bytes: 4 },
  27: { name: 'I64', block: 1, bytes: 8 },
  28: { name: 'F64', block: 1, bytes: 8 },
  29: { name: 'IQ1_M', block: 256, bytes: 56 },
  30: { name: 'BF16', block: 1, bytes: 2 },
  34: { name: 'TQ1_0', block: 256, bytes: 54 },
  35: { name: 'TQ2_0', block: 256, bytes: 66 },
  39: { name: 'MXFP4', block: 32, bytes: 17 },
};

/** Metadata value types of the format. */
export const GGUF_TYPE = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11, F64: 12 } as const;
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const MAX_DIMS = 4;
const MAX_ARRAY_DEPTH = 8;
const MAX_STRING = 1 << 30;

export interface GgufFile {
  file: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: TensorEntry[];
  alignment: number;
  dataStart: number;
}

/** Reads forward through the header, fetching bytes on demand; every read is bounded by the file size. */
class Cursor {
  private buf: Buffer = Buffer.alloc(0);
  private base = 0;
  pos = 0;
  constructor(
    readonly file: string,
    readonly size: number,
    private readonly fetch: (offset: number, length: number) => Buffer,
  ) {}

  private need(n: number, what: string): void {
    if (this.pos + n > this.size) throw corrupt(this.file, `file ends inside ${what} at byte ${this.pos} (needs ${n} more bytes; truncated?)`);
    if (this.pos + n <= this.base + this.buf.length) return;
    const length = Math.min(this.size - this.pos, Math.max(n, 1 << 20));
    this.buf = this.fetch(this.pos, length);
    this.base = this.pos;
  }
  private view(n: number, what: string): Buffer {
    this.need(n, what);
    const start = this.pos - this.base;
    this.pos += n;
    return this.buf.subarray(start, start + n);
  }
  u32(what: string): number {
    return this.view(4, what).readUInt32LE(0);
  }
  /** A u64 that must fit a safe integer (counts, sizes, offsets). */
  count(what: string): number {
    const v = this.view(8, what).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(this.file, `${what} ${v} is too large`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.count(`${what} length`);
    if (n > MAX_STRING || this.pos + n > this.size) throw corrupt(this.file, `${what}: string length ${n} runs past the end of the file`);
    return this.view(n, what).toString('utf8');
  }
  scalar(type: number, what: string): GgufValue {
    const b = this.view(SCALAR_BYTES[type], what);
    switch (type) {
      case GGUF_TYPE.U8:
        return b.readUInt8(0);
      case GGUF_TYPE.I8:
        return b.readInt8(0);
      case GGUF_TYPE.U16:
        return b.readUInt16LE(0);
      case GGUF_TYPE.I16:
        return b.readInt16LE(0);
      case GGUF_TYPE.U32:
        return b.readUInt32LE(0);
      case GGUF_TYPE.I32:
        return b.readInt32LE(0);
      case GGUF_TYPE.F32:
        return b.readFloatLE(0);
      case GGUF_TYPE.BOOL: {
        const v = b.readUInt8(0);
        if (v > 1) throw corrupt(this.file, `${what}: bool value ${v} is neither 0 nor 1`);
        return v === 1;
      }
      case GGUF_TYPE.U64:
        return b.readBigUInt64LE(0);
      case GGUF_TYPE.I64:
        return b.readBigInt64LE(0);
      default:
        return b.readDoubleLE(0);
    }
  }
  value(type: number, what: string, depth = 0): GgufValue {
    if (type === GGUF_TYPE.STRING) return this.string(what);
    if (type in SCALAR_BYTES) return this.scalar(type, what);
    if (type !== GGUF_TYPE.ARRAY) throw corrupt(this.file, `${what}: unknown metadata value type ${type}`);
    if (depth >= MAX_ARRAY_DEPTH) throw corrupt(this.file, `${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
    const elemType = this.u32(`${what} element type`);
    const n = this.count(`${what} element count`);
    // Every element takes at least one byte (strings and arrays at least 8): refuse counts the file cannot hold.
    const minBytes = elemType === GGUF_TYPE.STRING || elemType === GGUF_TYPE.ARRAY ? 8 : (SCALAR_BYTES[elemType] ?? 1);
    if (n * minBytes > this.size - this.pos) throw corrupt(this.file, `${what}: array of ${n} elements runs past the end of the file`);
    const out: GgufValue[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value(elemType, `${what}[${i}]`, depth + 1);
    return out;
  }
}

/** Parses and validates a GGUF header of a file of `size` bytes read through `fetch`. */
export function parseGguf(file: string, size: number, fetch: (offset: number, length: number) => Buffer): GgufFile {
  const c = new Cursor(file, size, fetch);
  if (size < 24) throw corrupt(file, `${size} bytes: too short for a GGUF header`);
  const magic = fetch(0, 4).toString('latin1');
  if (magic !== 'GGUF') throw corrupt(file, `not a GGUF file (magic ${JSON.stringify(magic)})`);
  c.pos = 4;
  const version = c.u32('version');
  if (version !== 3) throw corrupt(file, `GGUF version ${version} is not supported (only version 3)`);
  const tensorCount = c.count('tensor count');
  const kvCount = c.count('metadata count');
  // A key/value pair takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8 + 8.
  if (kvCount * 13 + tensorCount * 32 > size) throw corrupt(file, `${kvCount} metadata entries and ${tensorCount} tensors cannot fit in ${size} bytes`);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`);
    if (metadata.has(key)) throw corrupt(file, `metadata key ${key} appears twice`);
    const type = c.u32(`metadata ${key} type`);
    metadata.set(key, c.value(type, `metadata ${key}`));
  }
  let alignment = 32;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0 || a > 1 << 20)
      throw corrupt(file, `general.alignment must be a power of two, got ${String(a)}`);
    alignment = a;
  }
  const infos: Array<{ name: string; dims: number[]; type: number; rel: number }> = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor ${i} name`);
    if (names.has(name)) throw corrupt(file, `tensor ${name} appears twice`);
    names.add(name);
    const nDims = c.u32(`tensor ${name} dimension count`);
    if (nDims < 1 || nDims > MAX_DIMS) throw corrupt(file, `tensor ${name}: ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.count(`tensor ${name} dimension ${d}`));
    const type = c.u32(`tensor ${name} type`);
    const rel = c.count(`tensor ${name} offset`);
    infos.push({ name, dims, type, rel });
  }
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const tensors = infos.map((t) => tensorEntry(file, t, alignment, dataStart, size));
  checkNoOverlap(file, tensors);
  return { file, version, metadata, tensors, alignment, dataStart };
}

function tensorEntry(
  file: string,
  t: { name: string; dims: number[]; type: number; rel: number },
  alignment: number,
  dataStart: number,
  size: number,
): TensorEntry {
  const ty = GGML_TYPES[t.type];
  if (!ty) throw corrupt(file, `tensor ${t.name}: unknown ggml type ${t.type}`);
  if (t.dims[0] % ty.block !== 0)
    throw corrupt(file, `tensor ${t.name}: row of ${t.dims[0]} elements is not a whole number of ${ty.name} blocks (${ty.block})`);
  if (t.rel % alignment !== 0) throw corrupt(file, `tensor ${t.name}: offset ${t.rel} is not a multiple of the alignment ${alignment}`);
  let elements = 1;
  for (const d of t.dims) elements *= d;
  const byteLength = (elements / ty.block) * ty.bytes;
  if (!Number.isSafeInteger(byteLength) || dataStart + t.rel + byteLength > size)
    throw corrupt(file, `tensor ${t.name}: ${byteLength} bytes at data offset ${t.rel} run past the end of the file (${size} bytes; truncated?)`);
  return { name: t.name, file, offset: dataStart + t.rel, byteLength, dtype: ty.name, shape: [...t.dims].reverse() };
}

export function readGgufFile(file: string): GgufFile {
  const { fd, size } = openForRead(file);
  try {
    return parseGguf(file, size, (offset, length) => readRange(fd, file, offset, length, 'the GGUF header'));
  } finally {
    fs.closeSync(fd);
  }
}

export function ggufTensorMap(g: GgufFile): TensorMap {
  return new Map(g.tensors.map((t) => [t.name, t]));
}
