// One MoE-CAP run analysed per phase: its passes recomputed with our S-MBU/S-MFU and cost, beside
// MoE-CAP's own figures (its cap_metrics file when present, else its formula re-derived per model path).
import type { CostResult, PriceTable } from '../cap/cost';
import type { DatasheetEntry } from '../cap/hardware';
import { MoecapError } from '../errors';
import type { ModelShape } from './model_shape';
import { passTokens, type MoecapPass, type MoecapRun } from './moecap_folder';
import { requestLatency, type RequestLatency, type RequestRecords } from './moecap_requests';
import { makespanOf, ourCost, theirCost, type TheirCost } from './moecap_cost';
import { bytesPerParam, datasheetForGpu, differenceReasons, oursForPass, theirPathFor, theirsForPass, type OurFigures, type TheirPath } from './recompute';

// MoE-CAP's peak table (moe_cap/utils/hardware_utils.py PEAK_FLOPS_DICT) for the GPUs we have
// datasheets of: its bf16/fp16 entries are sparse figures, its float32 ones the dense bf16 figure.
const THEIR_PEAK: Record<string, { f32: number; b16: number; i8: number }> = {
  'h100-sxm': { f32: 989e12, b16: 1979e12, i8: 3958e12 },
  'h100-pcie': { f32: 756e12, b16: 1513e12, i8: 3026e12 },
  h200: { f32: 989e12, b16: 1979e12, i8: 3958e12 },
  'a100-sxm': { f32: 312e12, b16: 624e12, i8: 1248e12 },
  'a100-pcie': { f32: 312e12, b16: 624e12, i8: 1248e12 },
  a6000: { f32: 309.7e12, b16: 309.7e12, i8: 309.7e12 },
};

// Its bandwidth table (MEM_BW_DICT), keyed by the names it detects: the 40 GB A100s and the H100
// PCIe differ from our datasheets.
const THEIR_BW: Record<string, number> = {
  'NVIDIA-A100-PCIe-80GB': 1935e9,
  'NVIDIA-A100-PCIe-40GB': 1555e9,
  'NVIDIA-A100-SXM4-80GB': 2039e9,
  'NVIDIA-A100-SXM4-40GB': 1555e9,
  'NVIDIA-H100-PCIe-80GB': 2039e9,
  'NVIDIA-RTX-A5000-24GB': 768e9,
  'NVIDIA-RTX-A6000-48GB': 768e9,
  'NVIDIA-H100-HBM3-80GB': 3350e9,
  'NVIDIA-H200-141GB': 4800e9,
  'NVIDIA-H200-140GB': 4800e9,
  'NVIDIA-GH200-96GB': 4096e9,
};

export interface PhaseAnalysis {
  phase: 'prefill' | 'decode';
  passes: MoecapPass[];
  ours: OurFigures[];
  /** Means over the passes (MoE-CAP reports the same mean). */
  oursMean: { smbu: number; smfu: number };
  theirs: { smbu: number; smfu: number; from: string } | null;
  theirPath: TheirPath;
  reasons: { smbu: string; smfu: string };
  /** Ours per pass and for the phase as a whole (total seconds / total tokens). */
  costPerPass: number[];
  cost: CostResult;
}

/** One request-latency figure: MoE-CAP's published value, where it came from, and why ours differs. */
export interface LatencyComparison {
  theirs: number | null;
  from: string;
  reason: string;
}

/** The run's requests as the client measured them, beside MoE-CAP's TTFT and TPOT. */
export interface RequestAnalysis {
  records: RequestRecords;
  latency: RequestLatency;
  ttft: LatencyComparison;
  tpot: LatencyComparison;
}

export interface RunAnalysis {
  run: MoecapRun;
  datasheet: DatasheetEntry;
  precision: string;
  modelName: string;
  phases: PhaseAnalysis[];
  /** Null when the folder has no per-request records for the run. */
  requests: RequestAnalysis | null;
  theirCost: TheirCost;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** MoE-CAP's own S-MBU/S-MFU of a phase from its cap_metrics file (`prefill_*`, `decoding_*`), or null. */
export function publishedFigures(run: MoecapRun, phase: 'prefill' | 'decode'): { smbu: number; smfu: number } | null {
  const key = phase === 'prefill' ? 'prefill' : 'decoding';
  const [smbu, smfu] = [run.legacy?.[`${key}_smbu`], run.legacy?.[`${key}_smfu`]];
  return Number.isFinite(smbu) && Number.isFinite(smfu) ? { smbu, smfu } : null;
}

const OUR_TTFT = "ours: the client's time to the first token of each request (what a user waits)";
const OUR_TPOT =
  "ours: (latency − TTFT) / (tokens − 1) of each request as the client saw it (scheduling gaps, preemptions and other requests' prefills between its tokens count)";

// MoE-CAP's TTFT and TPOT: metrics performance.ttft/tpot, or the older cap_metrics ttft/tpot. Its
// TTFT is server time: since 2026-07-30 (when performance gained prefill_pass_latency_s) a request's
// prefill passes summed, before that the mean prefill pass. Its TPOT is the mean decode step.
function theirLatency(run: MoecapRun): { ttft: LatencyComparison; tpot: LatencyComparison } {
  const perf = run.metrics?.performance;
  const src = perf && typeof perf === 'object' ? perf : run.legacy;
  const file = src === perf ? 'metrics performance' : 'cap_metrics';
  const value = (k: string) => (src && Number.isFinite(src[k]) && src[k] >= 0 ? (src[k] as number) : null);
  const perRequest = src === perf && 'prefill_pass_latency_s' in perf;
  return {
    ttft: {
      theirs: value('ttft'),
      from: `their ${file}.ttft`,
      reason: perRequest
        ? `theirs: a request's prefill passes summed on the server (per pass where the records name no requests), without the queue before its first pass or the way to the client; ${OUR_TTFT}`
        : `theirs: the mean server prefill pass (one pass, not one request's wait: the queue and a chunked prompt's other passes left out); ${OUR_TTFT}`,
    },
    tpot: {
      theirs: value('tpot'),
      from: `their ${file}.tpot`,
      reason: `theirs: the mean server decode step (each step once, whatever its batch); ${OUR_TPOT}`,
    },
  };
}

function analyzeRequests(run: MoecapRun): RequestAnalysis | null {
  if (!run.requests) return null;
  return { records: run.requests, latency: requestLatency(run.requests), ...theirLatency(run) };
}

// Prefill passes that forwarded fewer tokens than their seq_lens_sum (a chunk, a cached prefix):
// ours counts the forwarded ones, their formula seq_lens_sum; said beside the S-MFU reason.
function withForwardedTokens(r: { smbu: string; smfu: string }, ps: MoecapPass[]): { smbu: string; smfu: string } {
  const fewer = ps.filter((p) => p.phase === 'prefill' && p.scheduledTokens !== null && p.scheduledTokens < p.seqLensSum);
  if (!fewer.length) return r;
  const forwarded = fewer.reduce((a, p) => a + p.scheduledTokens!, 0),
    lens = fewer.reduce((a, p) => a + p.seqLensSum, 0);
  return {
    ...r,
    smfu: `${r.smfu}; tokens: ours the ${forwarded} forwarded (scheduled_tokens) of ${fewer.length} passes, theirs their seq_lens_sum ${lens}`,
  };
}

export function analyzeRun(run: MoecapRun, model: ModelShape, prices: PriceTable, hardware?: string): RunAnalysis {
  const gpu = hardware ?? run.gpuName;
  const d = gpu ? datasheetForGpu(gpu) : null;
  if (!d) throw new MoecapError('ERR_INVALID_OPTION', `run ${run.key}: no datasheet for GPU '${gpu ?? '(not recorded)'}'; give --hardware NAME`);
  if (!prices.gpu[d.name]) throw new MoecapError('ERR_INVALID_OPTION', `run ${run.key}: no price for GPU '${d.name}'; add it with --prices`);
  const precision = run.precision ?? 'bfloat16';
  const modelName = run.modelName ?? model.name;
  const b = bytesPerParam(precision);
  const tp = THEIR_PEAK[d.name];
  const theirPeak = tp ? (b === 4 ? tp.f32 : b === 2 ? tp.b16 : tp.i8) : null;
  const path = theirPathFor(modelName);
  const phases: PhaseAnalysis[] = [];
  for (const phase of ['prefill', 'decode'] as const) {
    // MoE-CAP drops prefill passes of <= 10 tokens (warm-up probes); so do we, to compare like with like.
    const ps = run.passes.filter((p) => p.phase === phase && !(phase === 'prefill' && p.seqLensSum <= 10) && passTokens(p) > 0 && p.seconds > 0);
    if (!ps.length) continue;
    const ours = ps.map((p) => oursForPass(p, model, precision, d, run.numGpus));
    const pub = publishedFigures(run, phase);
    const published = pub ? { ...pub, from: 'their cap_metrics file' } : null;
    const derived = theirPeak
      ? ps.map((p) => theirsForPass(p, model, modelName, precision, (run.gpuName && THEIR_BW[run.gpuName]) || d.memoryBandwidth, theirPeak, run.numGpus))
      : null;
    const theirs =
      published ??
      (derived ? { smbu: mean(derived.map((x) => x.smbu)), smfu: mean(derived.map((x) => x.smfu)), from: `their ${path} path, re-derived` } : null);
    phases.push({
      phase,
      passes: ps,
      ours,
      oursMean: { smbu: mean(ours.map((x) => x.smbu)), smfu: mean(ours.map((x) => x.smfu)) },
      theirs,
      theirPath: path,
      reasons: withForwardedTokens(differenceReasons(path, model), ps),
      costPerPass: ps.map((p) => ourCost([p], prices, d, run.numGpus).usdPer1MTokens),
      cost: ourCost(ps, prices, d, run.numGpus),
    });
  }
  const legacyCost = run.legacy && (Number.isFinite(run.legacy.cost) || run.legacy.cost === null) ? (run.legacy.cost as number | null) : undefined;
  const tc = theirCost(run.gpuName, run.numGpus, makespanOf(run));
  return {
    run,
    datasheet: d,
    precision,
    modelName,
    phases,
    requests: analyzeRequests(run),
    theirCost: legacyCost !== undefined ? { ...tc, value: legacyCost, note: `${tc.note} (value from their cap_metrics file)` } : tc,
  };
}
