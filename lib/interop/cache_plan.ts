// Cache planning from real routing: replay a trace per layer through each (capacity, policy),
// then turn hits and loads into bytes from the slow tier per token and the time per token they
// imply with the slow tier's bandwidth and the compute side's memory bandwidth and peak.
import * as os from 'os';
import { expertBytes, bytesPerWeight } from '../cap/presets';
import { flopsPerToken } from '../cap/metrics';
import { MoecapError } from '../errors';
import { replayLayer, type ReplayCounts, type ReplayPolicy } from './cache_replay';
import type { TraceSpill } from './trace_spill';
import type { ModelShape } from './model_shape';

export interface CachePlanInputs {
  trace: TraceSpill;
  model: ModelShape;
  dtype: string;
  /** Slots per layer (>= 1), or a fraction of the experts when < 1. */
  capacities: number[];
  policies: ReplayPolicy[];
  tokensPerPass: number;
  staticProfilePasses: number;
  /** Slow tier read bandwidth, B/s (null: time not computed). */
  slowTierBandwidth: number | null;
  /** Compute side: memory bandwidth B/s and dense peak FLOP/s for the dtype (null: left out). */
  memoryBandwidth: number | null;
  peakFlops: number | null;
  /**
   * CPU threads for the replays (default: the machine's cores). Layers in flight are also bounded by
   * libuv's pool (UV_THREADPOOL_SIZE, 4 unless set before the pool starts; the CLI sets it to the CPUs).
   */
  parallel?: number;
}

export interface CachePlanRow {
  capacity: number;
  policy: ReplayPolicy;
  hits: number;
  misses: number;
  loads: number;
  hitRate: number;
  /** Bytes read from the slow tier per token of the model (all MoE layers). */
  slowBytesPerToken: number;
  /** Slow-tier time per token; with overlap the pass takes the larger of it and the compute side. */
  slowSecondsPerToken: number | null;
  computeSecondsPerToken: number | null;
  /** max(slow, compute) (perfect overlap) and slow + compute (none). */
  secondsPerTokenOverlapped: number | null;
  secondsPerTokenSerial: number | null;
}

export interface CachePlan {
  rows: CachePlanRow[];
  traceLayers: number;
  modelLayers: number;
  /** Model MoE layers per trace layer: each trace layer stands for this many when the trace has fewer. */
  layerScale: number;
  expertBytes: number;
  tokens: number;
  /** Mean distinct experts per pass per layer (all layers). */
  meanDistinctPerPass: number;
  /** How the replays ran (replayConcurrency) and their wall time, reading the layers included. */
  replay: { layersAtOnce: number; threadsPerLayer: number; seconds: number };
}

export function resolveCapacity(c: number, experts: number): number {
  if (!(c > 0)) throw new MoecapError('ERR_INVALID_OPTION', `--capacity ${c}: must be > 0 (slots, or a fraction < 1 of the experts)`);
  if (c < 1) return Math.max(1, Math.floor(c * experts));
  if (!Number.isInteger(c)) throw new MoecapError('ERR_INVALID_OPTION', `--capacity ${c}: slots must be an integer (or a fraction < 1)`);
  return Math.min(c, experts);
}

/**
 * Bytes a layer in flight holds per expert use, rounded up: its ids in JS and in the core (4 + 4),
 * the pass sets (4) and Belády's next uses (4). Measured: ~13.6 (peak RSS 220 MB with one layer at
 * once, 329 MB with two, at 1M tokens, k = 8, T = 1).
 */
export const REPLAY_BYTES_PER_USE = 16;

/**
 * libuv's pool size in this process, read from UV_THREADPOOL_SIZE as libuv reads it (the CLI sets
 * it): unset 4; else its leading integer, 1 where that is 0 or missing, at most 1024 (a negative one
 * wraps to unsigned there).
 */
export function libuvPoolSize(): number {
  const v = process.env.UV_THREADPOOL_SIZE;
  if (v === undefined) return 4;
  const n = parseInt(v, 10);
  return n < 0 ? 1024 : Math.min(1024, n || 1);
}

/**
 * How `threads` CPU threads are spread: layers replay at once on libuv's pool, each layer's configs
 * on threads of their own. Layers come first: a layer's jobs are uneven (lfru's walk alone is ~40%
 * of it), so extra threads on one layer wait for its longest job, while layers side by side keep
 * every thread busy. A layer in flight holds `layerBytes` (its ids, pass sets and next uses), so
 * memory grows with layersAtOnce, never with the trace's layers, and layersAtOnce stays within
 * `memoryBytes` (a quarter of this machine's memory).
 */
export function replayConcurrency(
  threads: number,
  layers: number,
  configs: number,
  layerBytes = 0,
  memoryBytes = os.totalmem() / 4,
): { layersAtOnce: number; threadsPerLayer: number } {
  const t = Math.max(1, Math.floor(threads));
  const byMemory = layerBytes > 0 ? Math.floor(memoryBytes / layerBytes) : Infinity;
  const layersAtOnce = Math.max(1, Math.min(t, libuvPoolSize(), layers, byMemory));
  return { layersAtOnce, threadsPerLayer: Math.max(1, Math.min(configs, Math.ceil(t / layersAtOnce))) };
}

export async function planCache(i: CachePlanInputs): Promise<CachePlan> {
  const { trace, model } = i;
  if (trace.maxExpert > model.experts)
    throw new MoecapError('ERR_CORRUPT_FILE', `trace '${trace.file}': expert id ${trace.maxExpert - 1} out of range for the model's ${model.experts} experts`);
  if (trace.topK !== model.topK)
    throw new MoecapError('ERR_CORRUPT_FILE', `trace '${trace.file}': ${trace.topK} experts per token, the model routes to k = ${model.topK}`);
  const configs: Array<{ capacity: number; policy: ReplayPolicy }> = [];
  for (const c of i.capacities) for (const p of i.policies) configs.push({ capacity: resolveCapacity(c, model.experts), policy: p });
  // Per layer, summed in layer order once all are in: layers finish in any order, and a float sum
  // in finishing order would make the plan differ in its last bits from run to run.
  const perLayer: ReplayCounts[][] = [];
  const perLayerTokens: number[] = [];
  const layerBytes = trace.tokens.reduce((m, t) => Math.max(m, t), 0) * trace.topK * REPLAY_BYTES_PER_USE;
  const { layersAtOnce, threadsPerLayer } = replayConcurrency(i.parallel ?? os.availableParallelism(), trace.layers, configs.length, layerBytes);
  const started = process.hrtime.bigint();
  const runOne = async (l: number) => {
    const ids = trace.layer(l);
    const tokens = ids.length / trace.topK;
    perLayerTokens[l] = tokens;
    const r = await replayLayer({
      ids,
      topK: trace.topK,
      experts: model.experts,
      tokensPerPass: i.tokensPerPass,
      staticProfilePasses: i.staticProfilePasses,
      configs,
      threads: threadsPerLayer,
    });
    perLayer[l] = r;
  };
  // A queue of layers: each worker takes the next as soon as its replay is done.
  let nextLayer = 0;
  const worker = async () => {
    while (nextLayer < trace.layers) await runOne(nextLayer++);
  };
  await Promise.all(Array.from({ length: layersAtOnce }, worker));
  const replaySeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const totals = configs.map(() => ({ passes: 0, hits: 0, misses: 0, loads: 0, evictions: 0 }) as ReplayCounts);
  let loadsPerToken = configs.map(() => 0);
  let distinct = 0,
    passes = 0;
  perLayer.forEach((r, l) => {
    r.forEach((c, j) => {
      const t = totals[j];
      t.passes += c.passes;
      t.hits += c.hits;
      t.misses += c.misses;
      t.loads += c.loads;
      t.evictions += c.evictions;
      loadsPerToken[j] += c.loads / perLayerTokens[l];
    });
    distinct += r[0].hits + r[0].misses;
    passes += r[0].passes;
  });
  const layerScale = model.moeLayers / trace.layers;
  loadsPerToken = loadsPerToken.map((v) => v * layerScale);
  const se = expertBytes(model, bytesPerWeight(i.dtype));
  // Compute side per token: every distinct expert of a pass is read from memory once per pass.
  const T = i.tokensPerPass;
  const meanDistinct = distinct / passes;
  const memBytesPerToken =
    (model.moeLayers * (meanDistinct * se + (model.sharedIntermediate ? 3 * model.hidden * model.sharedIntermediate * bytesPerWeight(i.dtype) : 0))) / T;
  const flops =
    model.moeLayers *
    flopsPerToken({
      hidden: model.hidden,
      experts: model.experts,
      topK: model.topK,
      intermediate: model.intermediate,
      sharedIntermediate: model.sharedIntermediate,
    });
  const compute = i.memoryBandwidth && i.peakFlops ? Math.max(memBytesPerToken / i.memoryBandwidth, flops / i.peakFlops) : null;
  const rows = configs.map((c, j): CachePlanRow => {
    const t = totals[j];
    const slowBytes = loadsPerToken[j] * se;
    const slow = i.slowTierBandwidth ? slowBytes / i.slowTierBandwidth : null;
    return {
      capacity: c.capacity,
      policy: c.policy,
      hits: t.hits,
      misses: t.misses,
      loads: t.loads,
      hitRate: t.hits / Math.max(1, t.hits + t.misses),
      slowBytesPerToken: slowBytes,
      slowSecondsPerToken: slow,
      computeSecondsPerToken: compute,
      secondsPerTokenOverlapped: slow !== null && compute !== null ? Math.max(slow, compute) : null,
      secondsPerTokenSerial: slow !== null && compute !== null ? slow + compute : null,
    };
  });
  return {
    rows,
    traceLayers: trace.layers,
    modelLayers: model.moeLayers,
    layerScale,
    expertBytes: se,
    tokens: perLayerTokens[0],
    meanDistinctPerPass: meanDistinct,
    replay: { layersAtOnce, threadsPerLayer, seconds: replaySeconds },
  };
}
