// Sparsity-aware metrics of the MoE-CAP paper (§4): distinct experts, S-MBU, S-MFU,
// latency figures and percentiles. Pure arithmetic on measured inputs; nothing here measures.
import { MoecapRangeError } from '../errors';

/** Distinct experts touched by one pass of one layer: A = |∪_t ids(t)|. Negative ids (dropped) are skipped. */
export function distinctExperts(ids: ArrayLike<number>): number {
  const seen = new Set<number>();
  for (let i = 0; i < ids.length; i++) if (ids[i] >= 0) seen.add(ids[i]);
  return seen.size;
}

/** Per-expert assignment counts of one layer's routing ([T, k] ids). */
export function expertHistogram(ids: ArrayLike<number>, experts: number): number[] {
  const h = new Array<number>(experts).fill(0);
  for (let i = 0; i < ids.length; i++) {
    const e = ids[i];
    if (e >= 0) {
      if (e >= experts) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `expert id ${e} out of range [0, ${experts})`);
      h[e]++;
    }
  }
  return h;
}

/** E[A] under uniform routing of T tokens, k distinct experts each: E·(1 − (1 − k/E)^T). */
export function expectedDistinctUniform(experts: number, topK: number, tokens: number): number {
  if (!(experts > 0) || !(topK > 0) || topK > experts) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'need 0 < topK <= experts');
  if (!(tokens >= 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'tokens must be >= 0');
  return experts * (1 - Math.pow(1 - topK / experts, tokens));
}

export interface LayerBytes {
  /** Router weights read: H·E·b_router. */
  router: number;
  /** A·S_e. */
  experts: number;
  /** Shared experts (read every pass). */
  shared: number;
  /** Attention weights and KV cache, when the run includes attention (it does not here). */
  attention: number;
  /** Activation rows read and results written, where the caller counts them (an expert-parallel
   *  rank's rows: its compute moves them as well as the weights); 0 for the single-process layer. */
  activations: number;
  total: number;
}

/** Bytes that must be read by one pass of one MoE layer (S-MBU numerator). */
export function layerBytes(a: {
  distinctExperts: number;
  expertBytes: number;
  routerBytes: number;
  sharedBytes?: number;
  attentionBytes?: number;
  kvBytes?: number;
  activationBytes?: number;
}): LayerBytes {
  for (const [k, v] of Object.entries(a))
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `${k} must be a finite number >= 0, got ${v}`);
  const experts = a.distinctExperts * a.expertBytes;
  const shared = a.sharedBytes ?? 0;
  const attention = (a.attentionBytes ?? 0) + (a.kvBytes ?? 0);
  const activations = a.activationBytes ?? 0;
  return { router: a.routerBytes, experts, shared, attention, activations, total: a.routerBytes + experts + shared + attention + activations };
}

/** S-MBU = bytes / seconds / peak bandwidth (bytes/s). */
export function smbu(bytes: number, seconds: number, peakBandwidth: number): number {
  if (!(seconds > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'seconds must be > 0');
  if (!(peakBandwidth > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'peakBandwidth must be > 0');
  return bytes / seconds / peakBandwidth;
}

/** FLOPs of one row through one expert of intermediate size F: 2·3·H·F (gate, up, down). */
export function expertRowFlops(hidden: number, intermediate: number): number {
  return 2 * 3 * hidden * intermediate;
}

/**
 * FLOPs per token of one MoE layer, the paper's formula: 2·H·E (router) + 2·k·3·H·F (the k routed
 * experts: gate, up, down) + 2·3·H·F_shared (shared) + attention (given by the caller, 0 here).
 */
export function flopsPerToken(s: {
  hidden: number;
  experts: number;
  topK: number;
  intermediate: number;
  sharedIntermediate?: number;
  attentionFlops?: number;
}): number {
  const H = s.hidden;
  return 2 * H * s.experts + s.topK * expertRowFlops(H, s.intermediate) + expertRowFlops(H, s.sharedIntermediate ?? 0) + (s.attentionFlops ?? 0);
}

/** S-MFU = tokens/s · FLOPs per token / peak FLOP/s. */
export function smfu(tokensPerSecond: number, flopsPerTok: number, peakFlops: number): number {
  if (!(peakFlops > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'peakFlops must be > 0');
  return (tokensPerSecond * flopsPerTok) / peakFlops;
}

/** Offload tier utilisation: bytes moved from the slow tier / seconds / that tier's peak. */
export function tierUtilisation(bytesMoved: number, seconds: number, tierBandwidth: number): number {
  return smbu(bytesMoved, seconds, tierBandwidth);
}

/**
 * Percentile with linear interpolation between closest ranks (numpy's default, Hyndman–Fan type 7):
 * sorted x, h = (n−1)·p, result = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'percentile of an empty list');
  return percentileOfSorted(Float64Array.from(values).sort(), p);
}

// The same on values sorted ascending (a summary sorts once for all its percentiles).
function percentileOfSorted(s: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'p must be in [0, 1]');
  const h = (s.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

/** The median: percentile(values, 0.5). */
export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}

export interface Summary {
  n: number;
  median: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

// Sorted once and read by index: no spread of the values into Math.min/max, which overflows the
// stack past ~10^5 values (an engine run's decode steps).
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'summary of an empty list');
  const s = Float64Array.from(values).sort();
  const p50 = percentileOfSorted(s, 0.5);
  return {
    n: s.length,
    median: p50,
    p50,
    p90: percentileOfSorted(s, 0.9),
    p99: percentileOfSorted(s, 0.99),
    min: s[0],
    max: s[s.length - 1],
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

/** Throughput of a pass: tokens / seconds. */
export function tokensPerSecond(tokens: number, seconds: number): number {
  if (!(seconds > 0)) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'seconds must be > 0');
  return tokens / seconds;
}
