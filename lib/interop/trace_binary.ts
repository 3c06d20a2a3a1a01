// The binary routing trace (`moecap trace import ... --out FILE.mctrace`): the ids of each layer
// as one contiguous block (uint8/uint16/int32 as the expert count allows), so plan-cache and
// trace stats read a layer with one read instead of parsing JSONL. Little-endian layout:
//   0  magic "MCTRACE\0"        8  u32 version (1)     12 u32 layers      16 u32 experts
//   20 u32 topK                 24 u32 idBytes (1|2|4)  28 u32 0           32 u64 file size
//   40 u64 xxhash64 of bytes [0, 40) and the layer table   48..64 zero
//   64 layer table: per layer u64 tokens, u64 xxhash64 of its id block; then the id blocks in order.
// Everything is checked before use (header and table on open, a layer's checksum and id range
// when it is read), so a truncated or altered file is an ERR_CORRUPT_FILE naming the field.
import * as fs from 'fs';
import * as path from 'path';
import { MoecapError } from '../errors';
import { callNative } from '../native/call';
import { loadAddon } from '../native/loader';

export const MCTRACE_MAGIC = Buffer.from('MCTRACE\0', 'latin1');
export const MCTRACE_VERSION = 1;
const HEADER = 64;
const ENTRY = 16;
const MAX_LAYERS = 4096;

interface HashAddon {
  xxhash64(b: Uint8Array, seed?: number): string;
}
const hash = (b: Uint8Array): bigint => BigInt('0x' + (loadAddon() as unknown as HashAddon).xxhash64(b));

export function idBytesFor(experts: number): 1 | 2 | 4 {
  return experts <= 256 ? 1 : experts <= 65536 ? 2 : 4;
}

/** True when the file starts with the binary trace's magic (a short or unreadable file: false). */
export function isBinaryTrace(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(MCTRACE_MAGIC.length);
    return fs.readSync(fd, b, 0, b.length, 0) === b.length && b.equals(MCTRACE_MAGIC);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface BinaryTraceHeader {
  layers: number;
  experts: number;
  topK: number;
  idBytes: 1 | 2 | 4;
  /** Tokens per layer. */
  tokens: number[];
  /** Per layer: the id block's offset in the file and its xxhash64. */
  offsets: number[];
  checksums: bigint[];
}

/**
 * Checks the header and layer table of `bytes` (the file's first bytes, at least the header and
 * table when the file has them) against the file's size → the header; ERR_CORRUPT_FILE naming
 * the file and the field otherwise. Pure over its inputs, so the fuzz target can drive it.
 */
export function parseBinaryTraceHeader(file: string, bytes: Buffer, fileSize: number): BinaryTraceHeader {
  const bad = (field: string, msg: string) => new MoecapError('ERR_CORRUPT_FILE', `binary trace '${file}' field '${field}': ${msg}`);
  if (bytes.length < HEADER || fileSize < HEADER) throw bad('header', `file has ${fileSize} bytes, the header alone needs ${HEADER}`);
  if (!bytes.subarray(0, 8).equals(MCTRACE_MAGIC)) throw bad('magic', 'not a moecap binary trace (expected "MCTRACE\\0")');
  const version = bytes.readUInt32LE(8);
  if (version !== MCTRACE_VERSION) throw bad('version', `${version} is not supported (this moecap reads version ${MCTRACE_VERSION})`);
  const layers = bytes.readUInt32LE(12),
    experts = bytes.readUInt32LE(16),
    topK = bytes.readUInt32LE(20),
    idBytes = bytes.readUInt32LE(24);
  if (layers < 1 || layers > MAX_LAYERS) throw bad('layers', `must be in [1, ${MAX_LAYERS}], got ${layers}`);
  if (experts < 1 || experts > 2 ** 31 - 1) throw bad('experts', `must be >= 1, got ${experts}`);
  if (topK < 1 || topK > experts) throw bad('topK', `must be in [1, experts = ${experts}], got ${topK}`);
  if (idBytes !== idBytesFor(experts)) throw bad('idBytes', `must be ${idBytesFor(experts)} for ${experts} experts, got ${idBytes}`);
  if (bytes.readUInt32LE(28) !== 0) throw bad('reserved', 'bytes 28..32 must be zero');
  for (let i = 48; i < HEADER; i++) if (bytes[i] !== 0) throw bad('reserved', 'bytes 48..64 must be zero');
  const size = bytes.readBigUInt64LE(32);
  if (size !== BigInt(fileSize)) throw bad('fileSize', `header says ${size} bytes, the file has ${fileSize} (truncated or appended to)`);
  const tableEnd = HEADER + layers * ENTRY;
  if (fileSize < tableEnd || bytes.length < tableEnd)
    throw bad('layerTable', `${layers} layers need ${tableEnd} bytes of header and table, the file has ${fileSize}`);
  const want = bytes.readBigUInt64LE(40);
  const got = hash(Buffer.concat([bytes.subarray(0, 40), bytes.subarray(HEADER, tableEnd)]));
  if (want !== got) throw bad('headerChecksum', `xxhash64 of the header and layer table is ${hex(got)}, the file says ${hex(want)}`);
  const tokens: number[] = [],
    offsets: number[] = [],
    checksums: bigint[] = [];
  let at = tableEnd;
  for (let l = 0; l < layers; l++) {
    const t = bytes.readBigUInt64LE(HEADER + l * ENTRY);
    const blk = t * BigInt(topK * idBytes);
    if (t < 1n || BigInt(at) + blk > BigInt(fileSize))
      throw bad(`layer ${l} tokens`, `${t} tokens × ${topK} ids × ${idBytes} B do not fit in the file's ${fileSize} bytes`);
    tokens.push(Number(t));
    offsets.push(at);
    checksums.push(bytes.readBigUInt64LE(HEADER + l * ENTRY + 8));
    at += Number(blk);
  }
  if (at !== fileSize) throw bad('fileSize', `the layers end at byte ${at}, the file has ${fileSize} bytes`);
  return { layers, experts, topK, idBytes: idBytes as 1 | 2 | 4, tokens, offsets, checksums };
}

const hex = (v: bigint) => v.toString(16).padStart(16, '0');

/** Opens and checks a binary trace's header and table. */
export function readBinaryTraceHeader(file: string): BinaryTraceHeader {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, HEADER));
    fs.readSync(fd, head, 0, head.length, 0);
    const layers = head.length >= 16 ? head.readUInt32LE(12) : 0;
    const need = Math.min(size, HEADER + Math.min(layers, MAX_LAYERS) * ENTRY);
    const b = Buffer.alloc(need);
    fs.readSync(fd, b, 0, need, 0);
    return parseBinaryTraceHeader(file, b, size);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Layer l's ids [tokens, topK] from a checked header: read, checksum and ids (in range, a token's
 * k distinct, as the JSONL reader requires) checked and widened by the core (trace_ids.h).
 */
export function readBinaryTraceLayer(file: string, h: BinaryTraceHeader, l: number): Int32Array {
  return callNative(() =>
    (loadAddon() as unknown as TraceIdsAddon).readTraceIds({
      file,
      offset: h.offsets[l],
      tokens: h.tokens[l],
      topK: h.topK,
      idBytes: h.idBytes,
      layer: l,
      experts: h.experts,
      checksum: hex(h.checksums[l]),
    }),
  );
}

export interface TraceIdsAddon {
  readTraceIds(o: {
    file: string;
    offset: number;
    tokens: number;
    topK: number;
    idBytes: number;
    layer: number;
    experts?: number;
    checksum?: string;
  }): Int32Array;
}

/** A trace's layers (ids in [0, experts)) written as a binary trace; the file appears only when complete. */
export function writeBinaryTrace(out: string, src: { layers: number; topK: number; tokens: number[]; layer(l: number): Int32Array }, experts: number): number {
  const L = src.layers,
    k = src.topK,
    w = idBytesFor(experts);
  if (L < 1 || L > MAX_LAYERS) throw new MoecapError('ERR_INVALID_ARGUMENT', `a binary trace holds 1..${MAX_LAYERS} layers, got ${L}`);
  const head = Buffer.alloc(HEADER + L * ENTRY);
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  let size = head.length;
  try {
    fs.writeSync(fd, head, 0, head.length, 0); // placeholder: the table needs the checksums
    for (let l = 0; l < L; l++) {
      const ids = src.layer(l);
      if (ids.length !== src.tokens[l] * k) throw new MoecapError('ERR_INVALID_ARGUMENT', `layer ${l} has ${ids.length} ids, expected ${src.tokens[l]} × ${k}`);
      for (let i = 0; i < ids.length; i++)
        if (ids[i] < 0 || ids[i] >= experts) throw new MoecapError('ERR_INVALID_ARGUMENT', `layer ${l}: id ${ids[i]} out of range [0, ${experts})`);
      const blk =
        w === 1 ? Uint8Array.from(ids) : w === 2 ? new Uint8Array(Uint16Array.from(ids).buffer) : new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
      fs.writeSync(fd, blk, 0, blk.length, size);
      size += blk.length;
      head.writeBigUInt64LE(BigInt(src.tokens[l]), HEADER + l * ENTRY);
      head.writeBigUInt64LE(hash(blk), HEADER + l * ENTRY + 8);
    }
    MCTRACE_MAGIC.copy(head, 0);
    head.writeUInt32LE(MCTRACE_VERSION, 8);
    head.writeUInt32LE(L, 12);
    head.writeUInt32LE(experts, 16);
    head.writeUInt32LE(k, 20);
    head.writeUInt32LE(w, 24);
    head.writeBigUInt64LE(BigInt(size), 32);
    head.writeBigUInt64LE(hash(Buffer.concat([head.subarray(0, 40), head.subarray(HEADER)])), 40);
    fs.writeSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    fs.renameSync(tmp, out);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return size;
}
