// A MoE-CAP output folder (<out>/<org>/<model>/, Auto-CAP/MoE-CAP moe_cap/runner/openai_api_profile.py):
//   metadata_<ds>_<ts>.json          {hardware{gpu_type, num_gpus}, model_config{model_name, precision}, system_environment{…}}
//   metrics_<ds>_<ts>.json           {performance{ttft, tpot, prefill_pass_latency_s, request/s, …}, expert_activation{…}, …}
//   detailed_results_<ds>_<ts>.jsonl one forward pass per line: forward_mode, expert_activation (mean distinct
//                                    experts per layer), batch_size, seq_lens_sum, ttft (prefill) | tpot (decode) seconds,
//                                    scheduled_tokens (tokens the pass forwarded; recorders since 2026-08)
//   cap_metrics_<ds>_<ts>.json       older flat file: prefill_smbu, prefill_smfu, decoding_smbu, decoding_smfu, …, gpu_type "<n>x<name>"
//   output_data_<ds>_<ts>.jsonl      one request per line, its client times since 2026-07-08 (moecap_requests.ts)
//   detailed_results_<ds>.jsonl      beside it (openai_api_profile before 2026-03-19): one request per line (prompt_length,
//                                    output_len, ttft, latency, itl), no forward passes
/* eslint-disable @typescript-eslint/no-explicit-any -- MoE-CAP files are external JSON of loose shape, read field by field */
import * as fs from 'fs';
import * as path from 'path';
import { MoecapError, shown } from '../errors';
import { corrupt, jsonlLines, parseLine } from './jsonl_lines';
import { isRequestRecord, readOutputData, requestFromRecord, type MoecapRequest, type RequestRecords } from './moecap_requests';

export interface MoecapPass {
  line: number;
  phase: 'prefill' | 'decode';
  /** Mean distinct experts per MoE layer in the pass. */
  expertActivation: number;
  batchSize: number;
  seqLensSum: number;
  /** Tokens the pass forwarded (a prefill chunk, without a cached prefix), where the recorder wrote them. */
  scheduledTokens: number | null;
  seconds: number;
}

/** Tokens a pass computes: prefill the tokens it forwarded (scheduled_tokens where recorded, else the
 * whole seq_lens_sum: under chunked prefill or a cached prefix that counts tokens it did not
 * compute), decode one per sequence. */
export const passTokens = (p: MoecapPass) => (p.phase === 'prefill' ? (p.scheduledTokens ?? p.seqLensSum) : p.batchSize);

/** Passes of a detailed_results file that cannot be recomputed, by what they lack (MoE-CAP's own aggregates skip them too). */
export type SkippedPasses = Record<'expert_activation' | 'duration' | 'batch_size' | 'seq_lens_sum', number>;

export interface MoecapRun {
  key: string;
  metadata: Record<string, any> | null;
  metrics: Record<string, any> | null;
  legacy: Record<string, any> | null;
  passes: MoecapPass[];
  skipped: SkippedPasses;
  /** The run's per-request records: its output_data file, or the older per-request detailed_results of its dataset. */
  requests: RequestRecords | null;
  gpuName: string | null;
  /** num_gpus as recorded, else 1 (then numGpusRecorded is false and analyze says it assumed 1). */
  numGpus: number;
  numGpusRecorded: boolean;
  precision: string | null;
  modelName: string | null;
  /** system_environment.inference_engine and its version. */
  engine: string | null;
  engineVersion: string | null;
}

function readJson(file: string): Record<string, any> {
  let o: unknown;
  try {
    o = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MoecapError('ERR_CORRUPT_FILE', `MoE-CAP file '${file}': ${(e as Error).message}`);
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new MoecapError('ERR_CORRUPT_FILE', `MoE-CAP file '${file}': not a JSON object`);
  return o as Record<string, any>;
}

const noneSkipped = (): SkippedPasses => ({ expert_activation: 0, duration: 0, batch_size: 0, seq_lens_sum: 0 });

function readPasses(file: string): { passes: MoecapPass[]; skipped: SkippedPasses } | { requests: MoecapRequest[] } {
  const what = 'MoE-CAP detailed results';
  const out: MoecapPass[] = [];
  const skipped = noneSkipped();
  const requests: MoecapRequest[] = [];
  let layout: 'passes' | 'requests' | null = null;
  for (const ln of jsonlLines(file, what, 16 << 20)) {
    const r = parseLine(file, what, ln) as Record<string, unknown>;
    const bad = (f: string, m: string) => corrupt(file, what, ln.line, f, m);
    if (r === null || typeof r !== 'object') throw bad('(line)', 'expected an object');
    // The file's first record decides its layout; a later one of the other layout is corrupt.
    layout ??= isRequestRecord(r) ? 'requests' : 'passes';
    if (layout === 'requests') {
      if (!isRequestRecord(r)) throw bad('forward_mode', 'a forward pass among per-request records');
      requests.push(requestFromRecord(r as Record<string, any>, ln.line, 'per-request detailed_results', bad));
      continue;
    }
    const mode = r.forward_mode;
    if (typeof mode !== 'string') throw bad('forward_mode', `must be a string, got ${shown(mode)}`);
    const phase = mode === 'prefill' || mode === 'extend' ? 'prefill' : mode === 'decode' || mode === 'decoding' || mode === 'mixed' ? 'decode' : null;
    if (!phase) continue; // idle / unknown passes carry no work
    const n = (f: string, v: unknown) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(f, `must be a number >= 0, got ${shown(v)}`);
      return v;
    };
    const secKey = r.latency !== undefined ? 'latency' : phase === 'prefill' ? 'ttft' : 'tpot';
    // A field the recorder left null (or MoE-CAP's -1) is a pass it could not measure: skipped and
    // counted, as MoE-CAP's aggregates skip it. Any other value that is not a number is corrupt.
    const ea = r.expert_activation;
    const missing: Array<[keyof SkippedPasses, boolean]> = [
      ['expert_activation', ea === null || (typeof ea === 'number' && ea < 0)],
      ['duration', r[secKey] === null],
      ['batch_size', r.batch_size === null],
      ['seq_lens_sum', r.seq_lens_sum === null],
    ];
    const lacking = missing.find(([, none]) => none)?.[0];
    if (lacking) {
      skipped[lacking]++;
      continue;
    }
    out.push({
      line: ln.line,
      phase,
      expertActivation: n('expert_activation', ea),
      batchSize: n('batch_size', r.batch_size),
      seqLensSum: n('seq_lens_sum', r.seq_lens_sum),
      scheduledTokens: r.scheduled_tokens === undefined || r.scheduled_tokens === null ? null : n('scheduled_tokens', r.scheduled_tokens),
      seconds: n(secKey, r[secKey]),
    });
  }
  return layout === 'requests' ? { requests } : { passes: out, skipped };
}

/** The value at `keys` in a MoE-CAP file's JSON: undefined where absent (or null); a non-object on the way is a corrupt file. */
function fieldAt(o: Record<string, any> | null, keys: readonly string[], file: string): unknown {
  let v: unknown = o;
  for (let i = 0; i < keys.length; i++) {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v))
      throw new MoecapError('ERR_CORRUPT_FILE', `MoE-CAP file '${file}': ${keys.slice(0, i).join('.')} must be an object, got ${shown(v)}`);
    v = (v as Record<string, unknown>)[keys[i]];
  }
  return v ?? undefined;
}

/** A text field (GPU, precision, model, engine): absent → null, anything but a string → a corrupt file. */
function textAt(o: Record<string, any> | null, keys: readonly string[], file: string): string | null {
  const v = fieldAt(o, keys, file);
  if (v === undefined) return null;
  if (typeof v !== 'string') throw new MoecapError('ERR_CORRUPT_FILE', `MoE-CAP file '${file}': ${keys.join('.')} must be a string, got ${shown(v)}`);
  return v;
}

/** num_gpus: an integer >= 1 (or its digits); absent, or MoE-CAP's "N/A" placeholder → null. */
function gpusAt(o: Record<string, any> | null, keys: readonly string[], file: string): number | null {
  const v = fieldAt(o, keys, file);
  if (v === undefined || v === 'N/A') return null;
  const n = typeof v === 'string' && /^\d{1,6}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw new MoecapError('ERR_CORRUPT_FILE', `MoE-CAP file '${file}': ${keys.join('.')} must be an integer >= 1, got ${shown(v)}`);
  return n;
}

/** Every run (dataset + timestamp) in a folder, grouped by the `<ds>_<ts>` suffix of its files. */
export function readMoecapFolder(dir: string): MoecapRun[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    throw new MoecapError('ERR_IO', `cannot read MoE-CAP folder '${dir}': ${(e as Error).message}`);
  }
  const runs = new Map<string, MoecapRun>();
  const files = new Map<string, { metadata: string; legacy: string }>(); // each run's file names, for messages
  const get = (key: string) => {
    if (!runs.has(key)) {
      files.set(key, { metadata: '', legacy: '' });
      runs.set(key, {
        key,
        metadata: null,
        metrics: null,
        legacy: null,
        passes: [],
        skipped: noneSkipped(),
        requests: null,
        gpuName: null,
        numGpus: 1,
        numGpusRecorded: false,
        precision: null,
        modelName: null,
        engine: null,
        engineVersion: null,
      });
    }
    return runs.get(key)!;
  };
  const requestFiles: Array<{ dataset: string; records: RequestRecords }> = [];
  for (const n of names.sort()) {
    const m = /^(metadata|metrics|detailed_results|cap_metrics|output_data)_(.+)\.(json|jsonl)$/.exec(n);
    if (!m) continue;
    const f = path.join(dir, n);
    const detailed = m[1] === 'detailed_results' ? readPasses(f) : null;
    if (detailed && 'requests' in detailed) {
      requestFiles.push({ dataset: m[2], records: { file: f, layout: 'per-request detailed_results', requests: detailed.requests } });
      continue;
    }
    const r = get(m[2]),
      named = files.get(m[2])!;
    if (m[1] === 'metadata') {
      r.metadata = readJson(f);
      named.metadata = f;
    } else if (m[1] === 'metrics') r.metrics = readJson(f);
    else if (m[1] === 'cap_metrics') {
      r.legacy = readJson(f);
      named.legacy = f;
    } else if (m[1] === 'output_data') r.requests = readOutputData(f);
    else if (detailed) ({ passes: r.passes, skipped: r.skipped } = detailed);
  }
  // The per-request file belongs to the runs of its dataset (their files carry a timestamp, it does not).
  // (gsm8k's file is not gsm8k_hard's: the run key is exactly <dataset>_<YYYYmmdd>_<HHMMSS>.)
  const ofDataset = (key: string, dataset: string) =>
    key.length === dataset.length + 16 && key.startsWith(dataset) && /^_\d{8}_\d{6}$/.test(key.slice(dataset.length));
  for (const q of requestFiles) for (const r of runs.values()) if (ofDataset(r.key, q.dataset)) r.requests ??= q.records;
  if (runs.size === 0)
    throw new MoecapError(
      'ERR_CORRUPT_FILE',
      requestFiles.length
        ? `'${dir}' holds only per-request records (${requestFiles.map((q) => path.basename(q.records.file)).join(', ')}: MoE-CAP before 2026-03-19), no forward passes and no cap_metrics_*.json to compare`
        : `'${dir}' holds no MoE-CAP files (metrics_*.json, metadata_*.json, detailed_results_*.jsonl, cap_metrics_*.json, output_data_*.jsonl)`,
    );
  for (const r of runs.values()) {
    const { metadata: mf, legacy: lf } = files.get(r.key)!;
    const legacyGpuType = textAt(r.legacy, ['gpu_type'], lf);
    const legacyGpu = legacyGpuType === null ? null : /^(\d+)x(.+)$/.exec(legacyGpuType);
    r.gpuName = textAt(r.metadata, ['hardware', 'gpu_type'], mf) ?? legacyGpu?.[2] ?? null;
    const gpus = gpusAt(r.metadata, ['hardware', 'num_gpus'], mf) ?? (legacyGpu && Number(legacyGpu[1]) >= 1 ? Number(legacyGpu[1]) : null);
    r.numGpus = gpus ?? 1;
    r.numGpusRecorded = gpus !== null;
    r.precision = textAt(r.metadata, ['model_config', 'precision'], mf) ?? textAt(r.legacy, ['precision'], lf);
    r.modelName = textAt(r.metadata, ['model_config', 'model_name'], mf) ?? textAt(r.legacy, ['model_name'], lf);
    r.engine = textAt(r.metadata, ['system_environment', 'inference_engine'], mf);
    r.engineVersion = textAt(r.metadata, ['system_environment', 'inference_engine_version'], mf);
  }
  return [...runs.values()];
}
