// Routing records of real engines → moecap's trace JSONL ({"layer", "token", "experts"} per line,
// lib/cap/routing.ts), streamed line by line with validation.
//   vllm:   JSONL, one request per line: {"request_id"?, "routed_experts": [tokens][layers][k]}, the
//           CompletionOutput.routed_experts array of `--enable-return-routed-experts` (.tolist()).
//           Requests are concatenated in file order; tokens are numbered across requests.
//   sglang: JSONL, one record per line of the per-token recorder's dump
//           (`--expert-distribution-recorder-mode per_token`): {"forward_pass_id", "topk_ids_of_layer":
//           [layers][tokens][8], ...}, ids padded with -1 past k; "physical_to_logical_map"
//           ([layers][physical]) on any line maps physical ids (EPLB replicas) to logical experts.
//           The recorder saves a torch .pt; `python -c` with torch.load and json.dumps per record makes
//           this file. Records of the per_pass and stat modes hold counts, not ids, and are refused.
//   moecap: our own format, validated and rewritten in order.
import * as fs from 'fs';
import { MoecapError, shown } from '../errors';
import { corrupt, jsonlLines, parseLine } from './jsonl_lines';

export type TraceFormat = 'vllm' | 'sglang' | 'moecap';
export const TRACE_FORMATS: readonly TraceFormat[] = ['vllm', 'sglang', 'moecap'];

export interface ImportOptions {
  format: TraceFormat;
  /** Experts per layer (ids must be below); unknown: not checked beyond >= 0. */
  experts?: number;
  /** Expected k; unknown: from the first token. */
  topK?: number;
  /** Expected MoE layers; unknown: from the first record. */
  layers?: number;
}

export interface ImportSummary {
  records: number;
  tokens: number;
  layers: number;
  topK: number;
  lines: number;
}

const MAX_LINE = { vllm: 512 << 20, sglang: 512 << 20, moecap: 64 << 10 };
const WHAT = { vllm: 'vLLM routing file', sglang: 'SGLang expert distribution file', moecap: 'trace' };

class Writer {
  private parts: string[] = [];
  private size = 0;
  lines = 0;
  constructor(private readonly fd: number) {}
  push(layer: number, token: number, experts: number[]): void {
    const s = `{"layer":${layer},"token":${token},"experts":[${experts.join(',')}]}\n`;
    this.parts.push(s);
    this.size += s.length;
    this.lines++;
    if (this.size > 1 << 20) this.flush();
  }
  flush(): void {
    if (this.parts.length) fs.writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}

/** Imports `input` into `output` (written to a temporary name, renamed when complete). */
export function importTrace(input: string, output: string, o: ImportOptions): ImportSummary {
  if (!TRACE_FORMATS.includes(o.format)) throw new MoecapError('ERR_INVALID_OPTION', `--format must be one of ${TRACE_FORMATS.join(', ')}, got '${o.format}'`);
  const tmp = `${output}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (e) {
    throw new MoecapError('ERR_IO', `cannot write '${output}': ${(e as Error).message}`);
  }
  const w = new Writer(fd);
  try {
    const s = o.format === 'vllm' ? importVllm(input, w, o) : o.format === 'sglang' ? importSglang(input, w, o) : importMoecap(input, w, o);
    w.flush();
    fs.closeSync(fd);
    fs.renameSync(tmp, output);
    return { ...s, lines: w.lines };
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

interface Shape {
  k: number;
  layers: number;
  E: number | undefined;
}

/** Validates one token's ids of one layer: k consistent, ids in range, distinct (after dropping -1 padding when allowed). */
function tokenIds(raw: unknown, sh: Shape, bad: (field: string, msg: string) => MoecapError, field: string, padded: boolean, map?: number[]): number[] {
  if (!Array.isArray(raw)) throw bad(field, `must be an array of expert ids, got ${shown(raw)}`);
  const ids: number[] = [];
  for (const e of raw) {
    if (!Number.isInteger(e)) throw bad(field, `expert id ${shown(e)} is not an integer`);
    if (e === -1 && padded) continue;
    let id = e as number;
    if (map) {
      if (id < 0 || id >= map.length) throw bad(field, `physical expert id ${id} out of range [0, ${map.length})`);
      id = map[id];
    }
    if (id < 0 || (sh.E !== undefined && id >= sh.E)) throw bad(field, `expert id ${id} out of range [0, ${sh.E ?? '∞'})`);
    ids.push(id);
  }
  if (sh.k === 0) sh.k = ids.length;
  if (ids.length !== sh.k || sh.k === 0) throw bad(field, `has ${ids.length} expert ids, expected k = ${sh.k || '>= 1'} (k must be the same for every token)`);
  if (new Set(ids).size !== ids.length) throw bad(field, 'expert ids of a token must be distinct');
  return ids;
}

function importVllm(file: string, w: Writer, o: ImportOptions): Omit<ImportSummary, 'lines'> {
  const what = WHAT.vllm;
  const sh: Shape = { k: o.topK ?? 0, layers: o.layers ?? 0, E: o.experts };
  let token = 0,
    records = 0;
  for (const ln of jsonlLines(file, what, MAX_LINE.vllm)) {
    const rec = parseLine(file, what, ln) as Record<string, unknown>;
    const bad = (f: string, m: string) => corrupt(file, what, ln.line, f, m);
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw bad('(line)', 'expected an object with "routed_experts"');
    const re = rec.routed_experts;
    if (!Array.isArray(re)) throw bad('routed_experts', `must be an array [tokens][layers][k], got ${shown(re)}`);
    re.forEach((tok, t) => {
      if (!Array.isArray(tok)) throw bad(`routed_experts[${t}]`, 'must be an array [layers][k]');
      if (sh.layers === 0) sh.layers = tok.length;
      if (tok.length !== sh.layers || sh.layers === 0) throw bad(`routed_experts[${t}]`, `has ${tok.length} layers, expected ${sh.layers || '>= 1'}`);
      tok.forEach((ids, l) => w.push(l, token, tokenIds(ids, sh, bad, `routed_experts[${t}][${l}]`, false)));
      token++;
    });
    records++;
  }
  if (records === 0) throw new MoecapError('ERR_CORRUPT_FILE', `${what} '${file}' has no records`);
  return { records, tokens: token, layers: sh.layers, topK: sh.k };
}

function importSglang(file: string, w: Writer, o: ImportOptions): Omit<ImportSummary, 'lines'> {
  const what = WHAT.sglang;
  const sh: Shape = { k: o.topK ?? 0, layers: o.layers ?? 0, E: o.experts };
  let token = 0,
    records = 0;
  let map: number[][] | undefined;
  for (const ln of jsonlLines(file, what, MAX_LINE.sglang)) {
    const rec = parseLine(file, what, ln) as Record<string, unknown>;
    const bad = (f: string, m: string) => corrupt(file, what, ln.line, f, m);
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw bad('(line)', 'expected a recorder record object');
    const ptl = rec.physical_to_logical_map ?? rec.last_physical_to_logical_map;
    if (ptl !== undefined) {
      if (!Array.isArray(ptl) || !ptl.every((r) => Array.isArray(r) && r.every((x) => Number.isInteger(x) && x >= 0)))
        throw bad('physical_to_logical_map', 'must be [layers][physical experts] of integers >= 0');
      map = ptl as number[][];
    }
    if (rec.topk_ids_of_layer === undefined) {
      if (rec.global_physical_count !== undefined || rec.logical_count !== undefined)
        throw bad(
          'topk_ids_of_layer',
          'missing: this is a per_pass/stat record (expert counts, no per-token ids); record with --expert-distribution-recorder-mode per_token',
        );
      if (ptl !== undefined) continue;
      throw bad('topk_ids_of_layer', 'missing');
    }
    const tl = rec.topk_ids_of_layer;
    if (!Array.isArray(tl)) throw bad('topk_ids_of_layer', 'must be an array [layers][tokens][k]');
    if (sh.layers === 0) sh.layers = tl.length;
    if (tl.length !== sh.layers || sh.layers === 0) throw bad('topk_ids_of_layer', `has ${tl.length} layers, expected ${sh.layers || '>= 1'}`);
    if (map && map.length !== sh.layers) throw bad('physical_to_logical_map', `has ${map.length} layers, the records ${sh.layers}`);
    const n = Array.isArray(tl[0]) ? tl[0].length : -1;
    tl.forEach((toks, l) => {
      if (!Array.isArray(toks) || toks.length !== n) throw bad(`topk_ids_of_layer[${l}]`, `must hold the same ${n} tokens as layer 0`);
    });
    for (let t = 0; t < n; t++)
      for (let l = 0; l < sh.layers; l++) w.push(l, token + t, tokenIds((tl[l] as unknown[])[t], sh, bad, `topk_ids_of_layer[${l}][${t}]`, true, map?.[l]));
    token += n;
    records++;
  }
  if (records === 0) throw new MoecapError('ERR_CORRUPT_FILE', `${what} '${file}' has no per-token records`);
  return { records, tokens: token, layers: sh.layers, topK: sh.k };
}

function importMoecap(file: string, w: Writer, o: ImportOptions): Omit<ImportSummary, 'lines'> {
  const what = WHAT.moecap;
  const sh: Shape = { k: o.topK ?? 0, layers: 0, E: o.experts };
  const last: number[] = [];
  let records = 0,
    tokens = 0;
  for (const ln of jsonlLines(file, what, MAX_LINE.moecap)) {
    const r = parseLine(file, what, ln) as Record<string, unknown>;
    const bad = (f: string, m: string) => corrupt(file, what, ln.line, f, m);
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw bad('(line)', 'expected an object {layer, token, experts}');
    if (!Number.isInteger(r.layer) || (r.layer as number) < 0 || (r.layer as number) > 4095)
      throw bad('layer', `must be an integer in [0, 4096), got ${shown(r.layer)}`);
    if (!Number.isInteger(r.token) || (r.token as number) < 0) throw bad('token', `must be an integer >= 0, got ${shown(r.token)}`);
    const l = r.layer as number,
      t = r.token as number;
    if (o.layers !== undefined && l >= o.layers) throw bad('layer', `layer ${l} out of range [0, ${o.layers})`);
    while (last.length <= l) last.push(-1);
    if (t <= last[l]) throw bad('token', `token ${t} of layer ${l} comes after token ${last[l]} (tokens of a layer must be in increasing order)`);
    last[l] = t;
    w.push(l, t, tokenIds(r.experts, sh, bad, 'experts', false));
    if (l === 0) tokens++;
    records++;
  }
  if (records === 0) throw new MoecapError('ERR_CORRUPT_FILE', `trace '${file}' has no routing lines`);
  return { records, tokens, layers: last.length, topK: sh.k };
}
