// A moecap routing trace (JSONL {"layer", "token", "experts"}, lib/cap/routing.ts) read once and
// split into one binary file of ids per layer (uint8/uint16 when the experts fit) in a temporary folder, so a trace far larger
// than memory (61 layers × 1M tokens × k) can be replayed or summarised one layer at a time.
// A binary trace (trace_binary.ts, found by its magic) is read in place: nothing to spill.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MoecapError } from '../errors';
import { corrupt, jsonlBlocks, parseLine } from './jsonl_lines';
import { isBinaryTrace, readBinaryTraceHeader, readBinaryTraceLayer, type BinaryTraceHeader } from './trace_binary';

const WHAT = 'trace';
const MAX_LINE = 64 * 1024;
const FLUSH_IDS = 16 * 1024;

export interface TraceShape {
  /** Routed experts per layer; ids must be below it. Unknown: inferred as max id + 1. */
  experts?: number;
  /** Ids per token; unknown: taken from the first line. */
  topK?: number;
}

export class TraceSpill {
  private constructor(
    readonly file: string,
    private readonly dir: string,
    readonly topK: number,
    /** Tokens per layer, index = layer. */
    readonly tokens: number[],
    /** max id + 1 seen (a binary trace: its declared expert count, which bounds its ids). */
    readonly maxExpert: number,
    /** Bytes per id in the spill files: 1 or 2 when the shape's experts allow it (less to write), else 4. */
    private readonly idBytes: 1 | 2 | 4,
    /** Set for a binary trace: its layers are read from `file` itself (dir is unused). */
    private readonly binary?: BinaryTraceHeader,
  ) {}

  get layers(): number {
    return this.tokens.length;
  }

  /** Layer l's ids [tokens, topK], in token order. */
  layer(l: number): Int32Array {
    if (this.binary) return readBinaryTraceLayer(this.file, this.binary, l);
    const b = fs.readFileSync(path.join(this.dir, `layer${l}.bin`));
    const w = this.idBytes;
    if (w === 1) return Int32Array.from(b);
    if (w === 2) return Int32Array.from(new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
    if (b.byteOffset % 4 === 0) return new Int32Array(b.buffer, b.byteOffset, b.length / 4);
    return new Int32Array(new Uint8Array(b).buffer);
  }

  close(): void {
    if (this.binary) return;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  static read(file: string, shape: TraceShape = {}): TraceSpill {
    if (isBinaryTrace(file)) return TraceSpill.readBinary(file, shape);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-trace-'));
    try {
      return TraceSpill.readInto(file, dir, shape);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private static readBinary(file: string, shape: TraceShape): TraceSpill {
    const h = readBinaryTraceHeader(file);
    const bad = (field: string, msg: string) => new MoecapError('ERR_CORRUPT_FILE', `binary trace '${file}' field '${field}': ${msg}`);
    if (shape.topK !== undefined && shape.topK !== h.topK) throw bad('topK', `is ${h.topK}, the model routes k = ${shape.topK}`);
    if (shape.experts !== undefined && h.experts > shape.experts) throw bad('experts', `is ${h.experts}, more than the model's ${shape.experts}`);
    return new TraceSpill(file, '', h.topK, h.tokens, h.experts, h.idBytes, h);
  }

  private static readInto(file: string, dir: string, shape: TraceShape): TraceSpill {
    let k = shape.topK ?? 0;
    const E = shape.experts;
    const fds: number[] = [];
    const idBytes = E !== undefined && E <= 256 ? 1 : E !== undefined && E <= 65536 ? 2 : 4;
    const IdArray = idBytes === 1 ? Uint8Array : idBytes === 2 ? Uint16Array : Int32Array;
    const bufs: Array<Uint8Array | Uint16Array | Int32Array> = [];
    const fill: number[] = [];
    const lastToken: number[] = [];
    const tokens: number[] = [];
    let maxExpert = 0;
    const flush = (l: number) => {
      if (fill[l] === 0) return;
      fs.writeSync(fds[l], new Uint8Array(bufs[l].buffer, 0, fill[l] * idBytes));
      fill[l] = 0;
    };
    // One routing line's values, checked in the order of the messages: layer and token, then
    // (`ex` holding n values) the ids.
    const head = (line: number, l: unknown, t: unknown) => {
      if (!Number.isInteger(l) || (l as number) < 0 || (l as number) > 4095)
        throw corrupt(file, WHAT, line, 'layer', `must be an integer in [0, 4096), got ${JSON.stringify(l)}`);
      if (!Number.isInteger(t) || (t as number) < 0) throw corrupt(file, WHAT, line, 'token', `must be an integer >= 0, got ${JSON.stringify(t)}`);
    };
    // `stamp[e]`: the last line whose ids held e (the distinct check, one look-up per id).
    let stamp = new Int32Array(E ?? 256);
    const record = (line: number, l: unknown, t: unknown, ex: ArrayLike<unknown>, n: number) => {
      if (k === 0) k = n;
      if (n !== k || k === 0) throw corrupt(file, WHAT, line, 'experts', `has ${n} ids, expected k = ${k || '>= 1'} (k must be the same on every line)`);
      let dup = false;
      for (let j = 0; j < n; j++) {
        const e = ex[j] as number;
        if (!Number.isInteger(e) || e < 0 || (E !== undefined && e >= E))
          throw corrupt(file, WHAT, line, 'experts', `expert id ${JSON.stringify(e)} out of range [0, ${E ?? '∞'})`);
        if (e >= stamp.length) {
          const grown = new Int32Array(Math.max(2 * stamp.length, e + 1));
          grown.set(stamp);
          stamp = grown;
        }
        dup ||= stamp[e] === line;
        stamp[e] = line;
      }
      if (dup) throw corrupt(file, WHAT, line, 'experts', 'expert ids of a token must be distinct');
      const L = l as number;
      while (fds.length <= L) {
        fds.push(fs.openSync(path.join(dir, `layer${fds.length}.bin`), 'w'));
        bufs.push(new IdArray(FLUSH_IDS * k));
        fill.push(0);
        lastToken.push(-1);
        tokens.push(0);
      }
      if ((t as number) <= lastToken[L])
        throw corrupt(file, WHAT, line, 'token', `token ${t} of layer ${L} comes after token ${lastToken[L]} (tokens of a layer must be in increasing order)`);
      lastToken[L] = t as number;
      const b = bufs[L];
      let f = fill[L];
      for (let j = 0; j < k; j++) {
        const e = ex[j] as number;
        b[f++] = e;
        if (e >= maxExpert) maxExpert = e + 1;
      }
      fill[L] = f;
      tokens[L]++;
      if (f === b.length) flush(L);
    };
    const scan = new CanonicalScan();
    try {
      for (const blk of jsonlBlocks(file, WHAT, MAX_LINE)) {
        let line = blk.line;
        for (let start = 0; start < blk.end; line++) {
          // The scanner finds the line's end itself when the line is canonical; else indexOf does.
          const n = scan.line(blk.buf, start, blk.end);
          let nl = scan.end;
          if (n >= 0) {
            head(line, scan.layer, scan.token);
            record(line, scan.layer, scan.token, scan.ids, n);
          } else {
            nl = blk.buf.indexOf(10, start);
            if (nl < 0 || nl >= blk.end) nl = blk.end;
          }
          if (n === NOT_CANONICAL) {
            // Anything else goes through JSON.parse, so its errors are the same as ever.
            const text = blk.buf.toString('utf8', start, nl);
            if (text.trim()) {
              const o = parseLine(file, WHAT, { line, text }) as Record<string, unknown>;
              if (o === null || typeof o !== 'object' || Array.isArray(o))
                throw corrupt(file, WHAT, line, '(line)', 'expected an object {layer, token, experts}');
              head(line, o.layer, o.token);
              const ex = o.experts;
              if (!Array.isArray(ex)) throw corrupt(file, WHAT, line, 'experts', `must be an array of expert ids, got ${JSON.stringify(ex)}`);
              record(line, o.layer, o.token, ex, ex.length);
            }
          }
          start = nl + 1;
        }
      }
      for (let l = 0; l < fds.length; l++) flush(l);
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    if (tokens.length === 0) throw new MoecapError('ERR_CORRUPT_FILE', `trace '${file}' has no routing lines`);
    const missing = tokens.findIndex((n) => n === 0);
    if (missing >= 0) throw new MoecapError('ERR_CORRUPT_FILE', `trace '${file}': layer ${missing} has no tokens (layers must be 0..${tokens.length - 1})`);
    return new TraceSpill(file, dir, k, tokens, maxExpert, idBytes);
  }
}

const BLANK = -2;
const NOT_CANONICAL = -1;
const MAX_IDS = 1024;
const KEY_LAYER = Buffer.from('"layer"');
const KEY_TOKEN = Buffer.from('"token"');
const KEY_EXPERTS = Buffer.from('"experts"');

/**
 * The trace line as our writers print it, {"layer":L,"token":T,"experts":[e1,...]} (keys in that
 * order, ASCII blanks allowed, plain non-negative integers), read from the bytes without
 * JSON.parse. line() → the number of ids (in `ids`), BLANK, or NOT_CANONICAL for anything else
 * (then the caller parses the line as JSON and checks it the general way). Plain functions over
 * locals: this runs once per byte of a multi-GB trace.
 */
class CanonicalScan {
  layer = 0;
  token = 0;
  readonly ids = new Float64Array(MAX_IDS);

  /** Past the line's last byte (its newline or the block's end), set when line() returns >= 0. */
  end = 0;

  /** The line starting at `start` of a block ending at `end`. */
  line(b: Buffer, start: number, end: number): number {
    // Scanned up to the block's end: a newline is not a blank, so every step stops at it, and
    // the line is canonical only when its closing brace is followed by blanks and the newline.
    let i = skipBlanks(b, start, end);
    if (i === end || b[i] === 10) return BLANK;
    if (b[i] !== 123) return NOT_CANONICAL; // {
    i = keyColon(b, skipBlanks(b, i + 1, end), end, KEY_LAYER);
    if (i < 0) return NOT_CANONICAL;
    const l = readInt(b, i, end);
    i = afterInt;
    if (l < 0 || b[i] !== 44) return NOT_CANONICAL; // ,
    i = keyColon(b, skipBlanks(b, i + 1, end), end, KEY_TOKEN);
    if (i < 0) return NOT_CANONICAL;
    const t = readInt(b, i, end);
    i = afterInt;
    if (t < 0 || b[i] !== 44) return NOT_CANONICAL;
    i = keyColon(b, skipBlanks(b, i + 1, end), end, KEY_EXPERTS);
    if (i < 0 || b[i] !== 91) return NOT_CANONICAL; // [
    i = skipBlanks(b, i + 1, end);
    let n = 0;
    if (b[i] === 93)
      i++; // ]
    else {
      for (;;) {
        const e = readInt(b, i, end);
        i = afterInt;
        if (e < 0 || n === MAX_IDS || i >= end) return NOT_CANONICAL;
        this.ids[n++] = e;
        const c = b[i++];
        if (c === 93) break;
        if (c !== 44) return NOT_CANONICAL;
        i = skipBlanks(b, i, end);
      }
    }
    i = skipBlanks(b, i, end);
    if (i >= end || b[i] !== 125) return NOT_CANONICAL; // }
    i = skipBlanks(b, i + 1, end);
    if (i < end && b[i] !== 10) return NOT_CANONICAL;
    this.end = i;
    this.layer = l;
    this.token = t;
    return n;
  }
}

function skipBlanks(b: Buffer, i: number, end: number): number {
  while (i < end) {
    const c = b[i];
    if (c !== 32 && c !== 9 && c !== 13) break;
    i++;
  }
  return i;
}

/** "key", blanks, colon, blanks → the index after them, or -1. */
function keyColon(b: Buffer, i: number, end: number, k: Buffer): number {
  if (end - i < k.length) return -1;
  for (let j = 0; j < k.length; j++) if (b[i + j] !== k[j]) return -1;
  i = skipBlanks(b, i + k.length, end);
  if (i >= end || b[i] !== 58) return -1;
  return skipBlanks(b, i + 1, end);
}

let afterInt = 0;
/** A JSON integer >= 0 of at most 15 digits (no sign, fraction or exponent), or -1; afterInt: past it and its blanks. */
function readInt(b: Buffer, i: number, end: number): number {
  const s = i;
  let v = 0;
  while (i < end) {
    const c = b[i];
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
    i++;
  }
  const digits = i - s;
  if (digits === 0 || digits > 15 || (digits > 1 && b[s] === 48)) return -1;
  if (i < end) {
    const c = b[i];
    if (c === 46 || c === 101 || c === 69) return -1; // . e E
  }
  afterInt = skipBlanks(b, i, end);
  return v;
}
