// A moecap routing trace (JSONL {"layer", "token", "experts"}, lib/cap/routing.ts) read once and
// split into one binary file of ids per layer (uint8/uint16 when the experts fit) in a temporary folder, so a trace far larger
// than memory (61 layers × 1M tokens × k) can be replayed or summarised one layer at a time. The
// reading, checks and spill files are the core's (native/core/trace/jsonl_trace_reader.h).
// A binary trace (trace_binary.ts, found by its magic) is read in place: nothing to spill.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MoecapError, shown } from '../errors';
import { callNative } from '../native/call';
import { loadAddon } from '../native/loader';
import { corrupt, parseLine, type JsonlLine } from './jsonl_lines';
import { isBinaryTrace, readBinaryTraceHeader, readBinaryTraceLayer, type BinaryTraceHeader, type TraceIdsAddon } from './trace_binary';

const WHAT = 'trace';
const MAX_LINE = 64 * 1024;

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
    // The core's own spill file: read and widened by the core, nothing left to check.
    const file = path.join(this.dir, `layer${l}.bin`);
    const addon = loadAddon() as unknown as TraceIdsAddon;
    return callNative(() => addon.readTraceIds({ file, offset: 0, tokens: this.tokens[l], topK: this.topK, idBytes: this.idBytes, layer: l }));
  }

  close(): void {
    if (this.binary) return;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The trace read once (off the JS thread: the core parses and spills it); a binary trace is only opened. */
  static async read(file: string, shape: TraceShape = {}): Promise<TraceSpill> {
    if (isBinaryTrace(file)) return TraceSpill.readBinary(file, shape);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-trace-'));
    try {
      return await TraceSpill.readInto(file, dir, shape);
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

  private static async readInto(file: string, dir: string, shape: TraceShape): Promise<TraceSpill> {
    const addon = loadAddon() as unknown as TraceSpillAddon;
    const h = callNative(() => addon.traceSpillOpen({ file, dir, experts: shape.experts, topK: shape.topK || undefined, maxLineBytes: MAX_LINE }));
    try {
      // The core reads every line in the shape our writers print; any other line comes back here,
      // goes through JSON.parse (its errors are the same as ever) and its values go to the core's checks.
      for (;;) {
        const odd = await callNative(() => addon.traceSpillRun(h));
        if (!odd) break;
        if (!odd.text.trim()) continue;
        const o = parseLine(file, WHAT, odd) as Record<string, unknown>;
        if (o === null || typeof o !== 'object' || Array.isArray(o))
          throw corrupt(file, WHAT, odd.line, '(line)', 'expected an object {layer, token, experts}');
        const ex = Array.isArray(o.experts) ? (o.experts as unknown[]) : [];
        const num = Float64Array.from([o.layer, o.token, ...ex], (v) => (typeof v === 'number' ? v : NaN));
        const json = [o.layer, o.token, o.experts, ...ex].map((v) => shown(v));
        callNative(() => addon.traceSpillRecord(h, odd.line, num, json, Array.isArray(o.experts)));
      }
      const s = callNative(() => addon.traceSpillFinish(h));
      return new TraceSpill(file, dir, s.topK, s.tokens, s.maxExpert, s.idBytes);
    } finally {
      addon.traceSpillClose(h);
    }
  }
}

interface TraceSpillAddon {
  traceSpillOpen(o: { file: string; dir: string; experts?: number; topK?: number; maxLineBytes: number }): unknown;
  traceSpillRun(h: unknown): Promise<JsonlLine | null>;
  traceSpillRecord(h: unknown, line: number, values: Float64Array, json: string[], expertsIsArray: boolean): void;
  traceSpillFinish(h: unknown): { topK: number; tokens: number[]; maxExpert: number; idBytes: 1 | 2 | 4 };
  traceSpillClose(h: unknown): void;
}
