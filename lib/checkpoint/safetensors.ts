// Hugging Face safetensors: u64 LE header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}} (offsets relative to the data after the header, end exclusive),
// optional "__metadata__" (string → string), then the data. Sharded checkpoints add
// model.safetensors.index.json {metadata, weight_map: {tensor: file}}. Everything is validated
// before a byte of tensor data is read.
import * as fs from 'fs';
import * as path from 'path';
import { MoecapError, shown } from '../errors';
import { checkNoOverlap, corrupt, openForRead, product, readRange, type TensorEntry, type TensorMap } from './tensor_map';

/** Bytes per element of the safetensors dtypes (sub-byte FP4/FP6 are not listed: not sizable per element here). */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  F8_E8M0: 1,
};

/** Largest header accepted (the format's own limit). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

export interface SafetensorsFile {
  file: string;
  tensors: TensorEntry[];
  metadata: Record<string, string>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Validates a parsed header against a file of `fileSize` bytes whose data starts at `dataStart`. */
export function validateSafetensorsHeader(file: string, header: unknown, dataStart: number, fileSize: number): SafetensorsFile {
  if (!isPlainObject(header)) throw corrupt(file, 'safetensors header is not a JSON object');
  const dataSize = fileSize - dataStart;
  const tensors: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw corrupt(file, '__metadata__ must map strings to strings');
      metadata = v as Record<string, string>;
      continue;
    }
    if (!isPlainObject(v)) throw corrupt(file, `tensor ${name}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = v;
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES))
      throw corrupt(file, `tensor ${name}: unknown dtype ${shown(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every(isCount) || shape.length > 8)
      throw corrupt(file, `tensor ${name}: shape must be an array of at most 8 non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1]) || offsets[0] > offsets[1])
      throw corrupt(file, `tensor ${name}: data_offsets must be [begin, end] with 0 <= begin <= end`);
    const [begin, end] = offsets as [number, number];
    if (end > dataSize)
      throw corrupt(file, `tensor ${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes; truncated file?)`);
    const expected = product(shape as number[]) * SAFETENSORS_DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin)
      throw corrupt(file, `tensor ${name}: ${end - begin} bytes do not match shape [${(shape as number[]).join(', ')}] of ${dtype} (${expected} bytes)`);
    tensors.push({ name, file, offset: dataStart + begin, byteLength: end - begin, dtype, shape: shape as number[] });
  }
  checkNoOverlap(file, tensors);
  return { file, tensors, metadata };
}

/** Parses the header bytes (after the 8-byte length) of `file`. */
export function parseSafetensorsHeader(file: string, headerBytes: Buffer, fileSize: number): SafetensorsFile {
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.toString('utf8'));
  } catch (e) {
    throw corrupt(file, `safetensors header is not valid JSON (${(e as Error).message})`);
  }
  return validateSafetensorsHeader(file, json, 8 + headerBytes.length, fileSize);
}

/** Parses and validates a safetensors header of a file of `size` bytes read through `fetch`. */
export function parseSafetensors(file: string, size: number, fetch: (offset: number, length: number) => Buffer): SafetensorsFile {
  if (size < 8) throw corrupt(file, `${size} bytes: too short for a safetensors header length`);
  const n = fetch(0, 8).readBigUInt64LE(0);
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) throw corrupt(file, `header length ${n} exceeds the ${SAFETENSORS_MAX_HEADER}-byte limit`);
  if (n + 8n > BigInt(size)) throw corrupt(file, `header length ${n} runs past the end of the file (${size} bytes; truncated?)`);
  return parseSafetensorsHeader(file, fetch(8, Number(n)), size);
}

export function readSafetensorsFile(file: string): SafetensorsFile {
  const { fd, size } = openForRead(file);
  try {
    return parseSafetensors(file, size, (offset, length) => readRange(fd, file, offset, length, 'the safetensors header'));
  } finally {
    fs.closeSync(fd);
  }
}

export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

/**
 * Every tensor of a safetensors checkpoint: `dir/model.safetensors.index.json` (shards), else the
 * single .safetensors file in `dir` (or `p` itself when it names a file).
 */
export function readSafetensorsCheckpoint(p: string): { tensors: TensorMap; files: string[]; metadata: Record<string, string> } {
  const dir = fs.statSync(p).isDirectory() ? p : path.dirname(p);
  const indexPath = path.join(dir, SAFETENSORS_INDEX);
  let files: string[];
  let weightMap: Record<string, string> | null = null;
  if (fs.statSync(p).isFile()) files = [p];
  else if (fs.existsSync(indexPath)) {
    weightMap = readIndex(indexPath);
    files = [...new Set(Object.values(weightMap))].sort().map((f) => path.join(dir, f));
  } else {
    files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.safetensors'))
      .sort()
      .map((f) => path.join(dir, f));
    if (files.length !== 1)
      throw new MoecapError('ERR_INVALID_OPTION', `${dir}: expected one .safetensors file or ${SAFETENSORS_INDEX}, found ${files.length} .safetensors files`);
  }
  const tensors: TensorMap = new Map();
  const metadata: Record<string, string> = {};
  for (const f of files) {
    const parsed = readSafetensorsFile(f);
    Object.assign(metadata, parsed.metadata);
    for (const t of parsed.tensors) {
      const prev = tensors.get(t.name);
      if (prev) throw corrupt(f, `tensor ${t.name} is also in ${prev.file}`);
      if (weightMap && path.join(dir, weightMap[t.name] ?? '') !== f)
        throw corrupt(
          indexPath,
          `tensor ${t.name} is in ${path.basename(f)} but the weight_map ${weightMap[t.name] === undefined ? 'has no entry for it' : `says ${weightMap[t.name]}`}`,
        );
      tensors.set(t.name, t);
    }
  }
  if (weightMap)
    for (const [name, f] of Object.entries(weightMap))
      if (!tensors.has(name)) throw corrupt(path.join(dir, f), `tensor ${name} listed in ${SAFETENSORS_INDEX} is missing from the file`);
  return { tensors, files, metadata };
}

function readIndex(indexPath: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw corrupt(indexPath, `not valid JSON (${(e as Error).message})`);
  }
  const wm = isPlainObject(json) ? json.weight_map : undefined;
  if (!isPlainObject(wm)) throw corrupt(indexPath, 'weight_map must be an object {tensor: file}');
  for (const [name, f] of Object.entries(wm))
    if (typeof f !== 'string' || f === '' || f.includes('/') || f.includes('\\') || f === '.' || f === '..')
      throw corrupt(indexPath, `weight_map[${name}] must be a file name in the checkpoint folder, got ${shown(f)}`);
  return wm as Record<string, string>;
}
