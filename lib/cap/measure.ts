// Measurement of one CAP config: warm-up passes, the timed loop (a sample is a prefill pass, or one
// decode step, through all layers; native pass timers), counters read around the timed region, and
// the raw per-sample figures the scoring (scoring.ts) turns into results. Nothing here scores.
import type { MoeLayer, ForwardResult } from '../moe_layer';
import { Counters } from '../counters';
import { distinctExperts, expertHistogram, layerBytes } from './metrics';
import { layerFidelity, routingAgreement } from './accuracy';
import type { ConfigResult, Counter, Unavailable } from './results';

/** One layer's input of a sample: x [T, H], and the designed expert ids (null for natural routing). */
export interface LayerInput {
  x: Float32Array;
  ids: Int32Array | null;
}

export interface MeasureSpec {
  /** [layer][variant]; sample s uses variant s mod the variant count. */
  inputs: LayerInput[][];
  warmup: number;
  repeats: number;
  /** Samples per repeat (decode steps; 1 for prefill). */
  stepsPerRepeat: number;
  budgetSeconds: number | null;
  /** Tokens per pass and experts per token, routed experts, bytes of one routed expert. */
  tokens: number;
  topK: number;
  experts: number;
  expertBytes: number;
  /** Static offload policy: pin each layer's most used experts after the warm-up (the profile run). */
  pinStaticAfterWarmup: boolean;
}

/** Offload counters summed over the timed samples. */
export interface OffloadTotals {
  bytes: number;
  hits: number;
  misses: number;
  stallNs: number;
  ioNs: number;
}

/** The raw figures of the timed samples. */
export interface Samples {
  /** Seconds per sample (layer pass times summed). */
  seconds: number[];
  /** Bytes a sample must read (router, distinct experts, shared), summed over layers. */
  bytes: number[];
  /** [layer][sample]: distinct experts. */
  distinct: number[][];
  /** [layer][expert]: assignments over all samples. */
  histogram: number[][];
  dropped: number;
  assigned: number;
  /** Designed routing: Σ agreement·T and Σ T over the designed passes. */
  agreeSum: number;
  agreeN: number;
  /** Shared-expert bytes of a pass (as the engine reported it). */
  sharedBytes: number;
  offload: OffloadTotals;
  /** Wall time of the timed region. */
  wallSeconds: number;
  counters: Counter[] | Unavailable;
  /** Samples done when the timed loop ended. */
  count: number;
}

export type StageReport = (stage: 'warmup' | 'timed' | 'fidelity', done: number, target: number) => void;

async function runSample(layers: MoeLayer[], inputs: LayerInput[][], s: number) {
  let seconds = 0;
  const perLayer: Array<{ r: ForwardResult; designed: Int32Array | null }> = [];
  for (let l = 0; l < layers.length; l++) {
    const inp = inputs[l][s % inputs[l].length];
    const r = await layers[l].forward(inp.x);
    seconds += r.stats.timeNs / 1e9;
    perLayer.push({ r, designed: inp.ids });
  }
  return { seconds, perLayer };
}

function openCounters(): { counters: Counters | null; unavailable: Unavailable | null } {
  try {
    const counters = new Counters();
    counters.start();
    return { counters, unavailable: null };
  } catch (e) {
    return { counters: null, unavailable: { available: false, reason: `counters could not be opened: ${(e as Error).message}` } };
  }
}

function readCounters(counters: Counters | null, unavailable: Unavailable | null): Counter[] | Unavailable {
  if (!counters) return unavailable!;
  try {
    return counters.stop() as Counter[];
  } catch (e) {
    return { available: false, reason: `counters could not be read: ${(e as Error).message}` };
  }
}

/** Warm-up, then the timed samples; null when `signal` aborted the loop. */
export async function measureSamples(layers: MoeLayer[], m: MeasureSpec, report: StageReport, signal?: AbortSignal): Promise<Samples | null> {
  const { inputs, tokens: T, topK: k, experts: E } = m;
  report('warmup', 0, m.warmup);
  for (let w = 0; w < m.warmup; w++) await runSample(layers, inputs, w);
  if (m.pinStaticAfterWarmup) for (const l of layers) l.pinStatic();
  const offload: OffloadTotals = { bytes: 0, hits: 0, misses: 0, stallNs: 0, ioNs: 0 };

  const target = m.repeats * m.stepsPerRepeat;
  const { counters, unavailable } = openCounters();
  const t0 = process.hrtime.bigint();
  const seconds: number[] = [];
  const bytes: number[] = [];
  const A: number[][] = layers.map(() => []);
  const hist: number[][] = layers.map(() => new Array(E).fill(0));
  let dropped = 0,
    assigned = 0,
    agreeSum = 0,
    agreeN = 0,
    sharedBytesSeen = 0;
  let s = 0;
  report('timed', 0, target);
  for (let rep = 0; rep < m.repeats; rep++) {
    for (let step = 0; step < m.stepsPerRepeat; step++, s++) {
      if (signal?.aborted) {
        if (counters) counters.stop();
        return null;
      }
      const { seconds: sec, perLayer } = await runSample(layers, inputs, s);
      seconds.push(sec);
      let b = 0;
      perLayer.forEach(({ r, designed }, l) => {
        const a = distinctExperts(r.expertIds);
        A[l].push(a);
        const h = expertHistogram(r.expertIds, E);
        for (let e = 0; e < E; e++) hist[l][e] += h[e];
        b += layerBytes({ distinctExperts: a, expertBytes: m.expertBytes, routerBytes: r.stats.routerBytes, sharedBytes: r.stats.sharedBytes }).total;
        dropped += r.stats.dropped;
        const off = r.stats.offload;
        if (off) {
          offload.bytes += off.bytesRead;
          offload.hits += off.hits;
          offload.misses += off.misses;
          offload.stallNs += off.stallNs;
          offload.ioNs += off.ioNs;
        }
        sharedBytesSeen = r.stats.sharedBytes;
        assigned += T * k;
        if (designed) {
          agreeSum += routingAgreement(r.expertIds, designed, k) * T;
          agreeN += T;
        }
      });
      bytes.push(b);
      report('timed', s + 1, target);
    }
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    if (m.budgetSeconds !== null && elapsed >= m.budgetSeconds) break;
  }
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    seconds,
    bytes,
    distinct: A,
    histogram: hist,
    dropped,
    assigned,
    agreeSum,
    agreeN,
    sharedBytes: sharedBytesSeen,
    offload,
    wallSeconds,
    counters: readCounters(counters, unavailable),
    count: s,
  };
}

/** Fidelity of one layer on input x: an evenly spaced sample of `tokens` tokens against the fp64 reference. */
export async function measureFidelity(
  layer: MoeLayer,
  x: Float32Array,
  T: number,
  tokens: number,
  hidden: number,
  topK: number,
): Promise<ConfigResult['fidelity']> {
  try {
    const fwd = await layer.forward(x);
    const n = Math.min(T, tokens);
    const sample = Int32Array.from({ length: n }, (_, i) => Math.floor((i * T) / n));
    const ref = await layer.reference(x, sample);
    return {
      ...layerFidelity({ output: fwd.output, ids: fwd.expertIds, reference: ref, hidden, topK, dropped: fwd.stats.dropped, assignments: T * topK }),
      layer: 0,
    };
  } catch (e) {
    return { available: false, reason: `reference check failed: ${(e as Error).message}` };
  }
}
