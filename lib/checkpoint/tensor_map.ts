// What a checkpoint container reader produces: where each tensor's bytes lie, validated before
// any of them is read.
import * as fs from 'fs';
import { MoecapError } from '../errors';

export interface TensorEntry {
  name: string;
  /** The file holding it. */
  file: string;
  /** Absolute byte offset of its first element in `file`. */
  offset: number;
  byteLength: number;
  /** On-disk dtype, in the container's own spelling (safetensors 'BF16', GGUF 'Q8_0', …). */
  dtype: string;
  /** Row-major shape, slowest dimension first (GGUF dims reversed into this order). */
  shape: number[];
}

export type TensorMap = Map<string, TensorEntry>;

export function corrupt(file: string, what: string): MoecapError {
  return new MoecapError('ERR_CORRUPT_FILE', `${file}: ${what}`);
}

/** A positioned read of exactly `length` bytes (a short file is ERR_CORRUPT_FILE). */
export function readRange(fd: number, file: string, offset: number, length: number, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, offset + done);
    if (n === 0) throw corrupt(file, `file ends inside ${what} (truncated)`);
    done += n;
  }
  return buf;
}

export function openForRead(file: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new MoecapError(code === 'ENOENT' ? 'ERR_INVALID_OPTION' : 'ERR_IO', `cannot open checkpoint file ${file}: ${(e as Error).message}`);
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new MoecapError('ERR_INVALID_OPTION', `checkpoint file ${file} is not a regular file`);
  }
  return { fd, size: st.size };
}

/** Refuses byte ranges that overlap (sorted by offset); each must already lie inside its file. */
export function checkNoOverlap(file: string, entries: TensorEntry[]): void {
  const sorted = entries.filter((e) => e.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.byteLength) throw corrupt(file, `tensor ${sorted[i].name} overlaps tensor ${prev.name}`);
  }
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
