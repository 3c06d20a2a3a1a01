// Routing statistics of a trace, per layer: expert load histogram, distinct experts per batch of T
// against uniform routing, Gini and entropy of the load, stability of the hot set across windows,
// and how well layer l's experts predict layer l+1's (a co-occurrence table learned on the first
// half of the tokens, tested on the second).
import { expectedDistinctUniform } from '../cap/metrics';
import type { TraceSpill } from './trace_spill';

export interface LayerStats {
  layer: number;
  tokens: number;
  /** Assignments per expert. */
  load: number[];
  gini: number;
  /** Shannon entropy of the load share, bits, and as a fraction of log2(E). */
  entropyBits: number;
  entropyNorm: number;
  meanDistinctPerBatch: number;
  expectedUniform: number;
  /** Mean Jaccard overlap of consecutive windows' hot sets (the top `hotSize` experts by load). */
  hotSetStability: number | null;
  /** Fraction of layer l+1's experts (second half of the tokens) found in the top-k prediction from layer l; null on the last layer. */
  nextLayerPrecision: number | null;
}

export interface StatsOptions {
  experts: number;
  batch: number;
  window: number;
  hotSize: number;
}

export function gini(x: readonly number[]): number {
  const n = x.length;
  const s = [...x].sort((a, b) => a - b);
  const total = s.reduce((a, b) => a + b, 0);
  if (n === 0 || total === 0) return 0;
  let cum = 0;
  for (let i = 0; i < n; i++) cum += (i + 1) * s[i];
  return (2 * cum) / (n * total) - (n + 1) / n;
}

export function entropyBits(x: readonly number[]): number {
  const total = x.reduce((a, b) => a + b, 0);
  let h = 0;
  for (const v of x) if (v > 0) h -= (v / total) * Math.log2(v / total);
  return h;
}

function topSet(load: ArrayLike<number>, n: number): Set<number> {
  const idx = Array.from({ length: load.length }, (_, i) => i).sort((a, b) => load[b] - load[a] || a - b);
  return new Set(idx.slice(0, n).filter((i) => load[i] > 0));
}

function layerStats(l: number, ids: Int32Array, next: Int32Array | null, k: number, o: StatsOptions): LayerStats {
  const E = o.experts;
  const n = ids.length / k;
  const load = new Array<number>(E).fill(0);
  for (let i = 0; i < ids.length; i++) if (ids[i] >= 0) load[ids[i]]++;
  // Distinct experts per batch of T consecutive tokens (full batches only).
  const seen = new Int32Array(E).fill(-1);
  let batches = 0,
    distinct = 0;
  for (let b = 0; (b + 1) * o.batch <= n; b++, batches++)
    for (let i = b * o.batch * k; i < (b + 1) * o.batch * k; i++) {
      const e = ids[i];
      if (e >= 0 && seen[e] !== b) {
        seen[e] = b;
        distinct++;
      }
    }
  // Hot-set stability across windows of `window` tokens.
  let prev: Set<number> | null = null,
    jac = 0,
    pairs = 0;
  const wl = new Float64Array(E);
  for (let w0 = 0; w0 + o.window <= n; w0 += o.window) {
    wl.fill(0);
    for (let i = w0 * k; i < (w0 + o.window) * k; i++) if (ids[i] >= 0) wl[ids[i]]++;
    const cur = topSet(wl, o.hotSize);
    if (prev) {
      let inter = 0;
      for (const e of cur) if (prev.has(e)) inter++;
      const uni = prev.size + cur.size - inter;
      jac += uni ? inter / uni : 1;
      pairs++;
    }
    prev = cur;
  }
  // Next-layer predictability: counts[e][f] of token routed to e here and f at l+1.
  let precision: number | null = null;
  if (next && next.length === ids.length) {
    const half = Math.floor(n / 2);
    const co = new Float64Array(E * E);
    for (let t = 0; t < half; t++)
      for (let a = 0; a < k; a++) {
        const e = ids[t * k + a];
        if (e < 0) continue;
        for (let b = 0; b < k; b++) if (next[t * k + b] >= 0) co[e * E + next[t * k + b]]++;
      }
    const score = new Float64Array(E);
    let found = 0,
      total = 0;
    for (let t = half; t < n; t++) {
      score.fill(0);
      for (let a = 0; a < k; a++) {
        const e = ids[t * k + a];
        if (e >= 0) for (let f = 0; f < E; f++) score[f] += co[e * E + f];
      }
      const pred = topSet(score, k);
      for (let b = 0; b < k; b++) {
        const f = next[t * k + b];
        if (f < 0) continue;
        total++;
        if (pred.has(f)) found++;
      }
    }
    precision = total ? found / total : null;
  }
  const h = entropyBits(load);
  return {
    layer: l,
    tokens: n,
    load,
    gini: gini(load),
    entropyBits: h,
    entropyNorm: E > 1 ? h / Math.log2(E) : 1,
    meanDistinctPerBatch: batches ? distinct / batches : NaN,
    expectedUniform: expectedDistinctUniform(E, k, o.batch),
    hotSetStability: pairs ? jac / pairs : null,
    nextLayerPrecision: precision,
  };
}

/** Per-layer statistics; holds at most two layers' ids at a time. */
export function traceStats(trace: TraceSpill, o: StatsOptions): LayerStats[] {
  const out: LayerStats[] = [];
  let cur = trace.layer(0);
  for (let l = 0; l < trace.layers; l++) {
    const next = l + 1 < trace.layers ? trace.layer(l + 1) : null;
    out.push(layerStats(l, cur, next, trace.topK, o));
    if (next) cur = next;
  }
  return out;
}
