// Lines of a (possibly huge) JSONL file, read in chunks so memory stays bounded: a line longer
// than `maxLineBytes` is refused (ERR_CORRUPT_FILE naming the line) instead of being buffered.
import * as fs from 'fs';
import { MoecapError } from '../errors';

export interface JsonlLine {
  /** 1-based line number. */
  line: number;
  text: string;
}

const CHUNK = 1 << 20;

function openOrThrow(file: string, what: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    throw new MoecapError('ERR_IO', `cannot read ${what} '${file}': ${(e as Error).message}`);
  }
}

/** Non-blank lines of `file`, in order. `what` names the file kind in errors ("trace", "vLLM routing file"). */
export function* jsonlLines(file: string, what: string, maxLineBytes: number): Generator<JsonlLine> {
  const fd = openOrThrow(file, what);
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let lineNo = 1;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(10, start);
        if (nl < 0 || nl >= n) break;
        const part = buf.subarray(start, nl);
        if (pendingBytes + part.length > maxLineBytes) tooLong(file, what, lineNo, maxLineBytes);
        const text = (pendingBytes ? Buffer.concat([...pending, part]) : part).toString('utf8');
        pending = [];
        pendingBytes = 0;
        if (text.trim()) yield { line: lineNo, text };
        lineNo++;
        start = nl + 1;
      }
      if (start < n) {
        if (pendingBytes + (n - start) > maxLineBytes) tooLong(file, what, lineNo, maxLineBytes);
        pending.push(Buffer.from(buf.subarray(start, n)));
        pendingBytes += n - start;
      }
    }
    if (pendingBytes) {
      const text = Buffer.concat(pending).toString('utf8');
      if (text.trim()) yield { line: lineNo, text };
    }
  } finally {
    fs.closeSync(fd);
  }
}

function tooLong(file: string, what: string, line: number, max: number): never {
  throw new MoecapError('ERR_CORRUPT_FILE', `${what} '${file}' line ${line}: longer than ${max} bytes (a truncated or binary file?)`);
}

/** JSON.parse of one line, with an error naming file and line. */
export function parseLine(file: string, what: string, l: JsonlLine): unknown {
  try {
    return JSON.parse(l.text);
  } catch {
    throw new MoecapError('ERR_CORRUPT_FILE', `${what} '${file}' line ${l.line}: not valid JSON (truncated line?)`);
  }
}

export function corrupt(file: string, what: string, line: number, field: string, msg: string): MoecapError {
  return new MoecapError('ERR_CORRUPT_FILE', `${what} '${file}' line ${line} field '${field}': ${msg}`);
}
