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

/** A block of whole lines: buf[0, end) (each ends in '\n' but maybe the file's last); `line` is the first one's number. */
interface JsonlBlock {
  buf: Buffer;
  end: number;
  line: number;
}

/**
 * The file in blocks of whole lines, about CHUNK bytes each, all lines (blank ones too) in order.
 * The buffer is reused: a block is valid until the next one is asked for. A line longer than
 * `maxLineBytes` ends the blocks before it and throws when it is reached.
 */
function* jsonlBlocks(file: string, what: string, maxLineBytes: number): Generator<JsonlBlock> {
  const fd = openOrThrow(file, what);
  try {
    // Grown while an unfinished line needs it, up to a chunk plus the longest line allowed.
    let buf = Buffer.allocUnsafe(Math.min(2 * CHUNK, CHUNK + maxLineBytes + 1));
    let have = 0; // bytes of an unfinished line carried to the front
    let lineNo = 1;
    for (;;) {
      if (buf.length - have < CHUNK && buf.length < CHUNK + maxLineBytes + 1) {
        const grown = Buffer.allocUnsafe(Math.min(Math.max(2 * buf.length, have + CHUNK), CHUNK + maxLineBytes + 1));
        buf.copy(grown, 0, 0, have);
        buf = grown;
      }
      const n = fs.readSync(fd, buf, have, buf.length - have, null);
      if (n === 0) break;
      const total = have + n;
      const last = buf.lastIndexOf(10, total - 1);
      if (last < 0) {
        if (total > maxLineBytes) tooLong(file, what, lineNo, maxLineBytes);
        have = total;
        continue;
      }
      // Count the lines, checking each one's length before handing out the block.
      let start = 0,
        lines = 0;
      for (let nl = buf.indexOf(10, 0); nl >= 0 && nl <= last; nl = buf.indexOf(10, start)) {
        if (nl - start > maxLineBytes) {
          if (start > 0) yield { buf, end: start, line: lineNo };
          tooLong(file, what, lineNo + lines, maxLineBytes);
        }
        lines++;
        start = nl + 1;
      }
      yield { buf, end: last + 1, line: lineNo };
      lineNo += lines;
      have = total - (last + 1);
      if (have > maxLineBytes) tooLong(file, what, lineNo, maxLineBytes);
      buf.copy(buf, 0, last + 1, total);
    }
    if (have) yield { buf, end: have, line: lineNo };
  } finally {
    fs.closeSync(fd);
  }
}

/** Non-blank lines of `file`, in order. `what` names the file kind in errors ("trace", "vLLM routing file"). */
export function* jsonlLines(file: string, what: string, maxLineBytes: number): Generator<JsonlLine> {
  for (const b of jsonlBlocks(file, what, maxLineBytes)) {
    let line = b.line;
    for (let start = 0; start < b.end; line++) {
      let nl = b.buf.indexOf(10, start);
      if (nl < 0 || nl >= b.end) nl = b.end;
      const text = b.buf.toString('utf8', start, nl);
      if (text.trim()) yield { line, text };
      start = nl + 1;
    }
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
