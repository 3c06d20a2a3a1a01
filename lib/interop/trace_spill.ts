// A moecap routing trace (JSONL {"layer", "token", "experts"}, lib/cap/routing.ts) read once and
// split into one binary file of int32 ids per layer in a temporary folder, so a trace far larger
// than memory (61 layers × 1M tokens × k) can be replayed or summarised one layer at a time.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MoecapError } from '../errors';
import { corrupt, jsonlLines, parseLine } from './jsonl_lines';

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
    /** max id + 1 seen. */
    readonly maxExpert: number,
  ) {}

  get layers(): number {
    return this.tokens.length;
  }

  /** Layer l's ids [tokens, topK], in token order. */
  layer(l: number): Int32Array {
    const b = fs.readFileSync(path.join(this.dir, `layer${l}.bin`));
    if (b.byteOffset % 4 === 0) return new Int32Array(b.buffer, b.byteOffset, b.length / 4);
    return new Int32Array(new Uint8Array(b).buffer);
  }

  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  static read(file: string, shape: TraceShape = {}): TraceSpill {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-trace-'));
    try {
      return TraceSpill.readInto(file, dir, shape);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private static readInto(file: string, dir: string, shape: TraceShape): TraceSpill {
    let k = shape.topK ?? 0;
    const E = shape.experts;
    const fds: number[] = [];
    const bufs: Int32Array[] = [];
    const fill: number[] = [];
    const lastToken: number[] = [];
    const tokens: number[] = [];
    let maxExpert = 0;
    const flush = (l: number) => {
      if (fill[l] === 0) return;
      fs.writeSync(fds[l], new Uint8Array(bufs[l].buffer, 0, fill[l] * 4));
      fill[l] = 0;
    };
    try {
      for (const ln of jsonlLines(file, WHAT, MAX_LINE)) {
        const o = parseLine(file, WHAT, ln) as Record<string, unknown>;
        const bad = (field: string, msg: string) => corrupt(file, WHAT, ln.line, field, msg);
        if (o === null || typeof o !== 'object' || Array.isArray(o)) throw bad('(line)', 'expected an object {layer, token, experts}');
        const l = o.layer, t = o.token, ex = o.experts;
        if (!Number.isInteger(l) || (l as number) < 0 || (l as number) > 4095) throw bad('layer', `must be an integer in [0, 4096), got ${JSON.stringify(l)}`);
        if (!Number.isInteger(t) || (t as number) < 0) throw bad('token', `must be an integer >= 0, got ${JSON.stringify(t)}`);
        if (!Array.isArray(ex)) throw bad('experts', `must be an array of expert ids, got ${JSON.stringify(ex)}`);
        if (k === 0) k = ex.length;
        if (ex.length !== k || k === 0) throw bad('experts', `has ${ex.length} ids, expected k = ${k || '>= 1'} (k must be the same on every line)`);
        for (const e of ex)
          if (!Number.isInteger(e) || e < 0 || (E !== undefined && e >= E))
            throw bad('experts', `expert id ${JSON.stringify(e)} out of range [0, ${E ?? '∞'})`);
        if (new Set(ex).size !== k) throw bad('experts', 'expert ids of a token must be distinct');
        const L = l as number;
        while (fds.length <= L) {
          fds.push(fs.openSync(path.join(dir, `layer${fds.length}.bin`), 'w'));
          bufs.push(new Int32Array(FLUSH_IDS * k));
          fill.push(0);
          lastToken.push(-1);
          tokens.push(0);
        }
        if ((t as number) <= lastToken[L])
          throw bad('token', `token ${t} of layer ${L} comes after token ${lastToken[L]} (tokens of a layer must be in increasing order)`);
        lastToken[L] = t as number;
        const b = bufs[L];
        for (let j = 0; j < k; j++) {
          const e = ex[j] as number;
          b[fill[L]++] = e;
          if (e + 1 > maxExpert) maxExpert = e + 1;
        }
        tokens[L]++;
        if (fill[L] === b.length) flush(L);
      }
      for (let l = 0; l < fds.length; l++) flush(l);
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    if (tokens.length === 0) throw new MoecapError('ERR_CORRUPT_FILE', `trace '${file}' has no routing lines`);
    const missing = tokens.findIndex((n) => n === 0);
    if (missing >= 0) throw new MoecapError('ERR_CORRUPT_FILE', `trace '${file}': layer ${missing} has no tokens (layers must be 0..${tokens.length - 1})`);
    return new TraceSpill(file, dir, k, tokens, maxExpert);
  }
}
