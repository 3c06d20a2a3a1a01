// Layer fidelity against the fp64 reference (shared/REFERENCE.md "Accuracy"): relative L2, max abs
// error, cosine, routing agreement, drop rate. Arithmetic on results only.

export interface LayerFidelity {
  relativeL2: number;
  maxAbsError: number;
  cosine: number;
  /** Fraction of compared tokens whose top-k SET equals the fp64 router's. */
  routingAgreement: number;
  /** Dropped assignments / all assignments (capacity); 0 when nothing was dropped. */
  dropRate: number;
  tokensCompared: number;
}

/** ‖y − r‖/‖r‖, max |y − r|, cos(y, r) over equal-length vectors. */
export function vectorErrors(y: ArrayLike<number>, r: ArrayLike<number>): { relativeL2: number; maxAbsError: number; cosine: number } {
  if (y.length !== r.length) throw new RangeError(`length mismatch: ${y.length} vs ${r.length}`);
  let d2 = 0, r2 = 0, y2 = 0, dot = 0, maxAbs = 0;
  for (let i = 0; i < y.length; i++) {
    const d = y[i] - r[i];
    d2 += d * d;
    r2 += r[i] * r[i];
    y2 += y[i] * y[i];
    dot += y[i] * r[i];
    if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
  }
  return {
    relativeL2: r2 > 0 ? Math.sqrt(d2 / r2) : Math.sqrt(d2),
    maxAbsError: maxAbs,
    // Both zero: identical (1); one zero: undefined direction, report 0.
    cosine: r2 > 0 && y2 > 0 ? dot / Math.sqrt(r2 * y2) : r2 === 0 && y2 === 0 ? 1 : 0,
  };
}

/** Fraction of tokens whose top-k id set (order ignored) equals the reference's. */
export function routingAgreement(ids: ArrayLike<number>, refIds: ArrayLike<number>, topK: number): number {
  if (ids.length !== refIds.length) throw new RangeError(`length mismatch: ${ids.length} vs ${refIds.length}`);
  if (!(topK > 0) || ids.length % topK) throw new RangeError('ids length must be a multiple of topK');
  const tokens = ids.length / topK;
  if (tokens === 0) return 1;
  let agree = 0;
  for (let t = 0; t < tokens; t++) {
    const a = Array.from({ length: topK }, (_, j) => ids[t * topK + j]).sort((x, y) => x - y);
    const b = Array.from({ length: topK }, (_, j) => refIds[t * topK + j]).sort((x, y) => x - y);
    if (a.every((v, i) => v === b[i])) agree++;
  }
  return agree / tokens;
}

export function dropRate(dropped: number, assignments: number): number {
  if (!(assignments > 0)) return 0;
  return dropped / assignments;
}

/**
 * Fidelity of an engine pass on sampled tokens. `output` and `ids` cover all T tokens; the reference
 * covers `sample` (token indices) in order, with fp64 routing of those tokens.
 */
export function layerFidelity(a: {
  output: ArrayLike<number>;
  ids: ArrayLike<number>;
  reference: { output: ArrayLike<number>; expertIds: ArrayLike<number>; sample: ArrayLike<number> };
  hidden: number;
  topK: number;
  dropped: number;
  assignments: number;
}): LayerFidelity {
  const { hidden: H, topK: k, reference: ref } = a;
  const n = ref.sample.length;
  const y = new Float64Array(n * H);
  const yIds = new Int32Array(n * k);
  const rIds = new Int32Array(n * k);
  for (let s = 0; s < n; s++) {
    const t = ref.sample[s];
    for (let h = 0; h < H; h++) y[s * H + h] = a.output[t * H + h];
    for (let j = 0; j < k; j++) yIds[s * k + j] = a.ids[t * k + j];
    // The reference's ids cover either the sample or every token; pick the sampled token's row.
    const row = ref.expertIds.length === n * k ? s : t;
    for (let j = 0; j < k; j++) rIds[s * k + j] = ref.expertIds[row * k + j];
  }
  const e = vectorErrors(y, Array.prototype.slice.call(ref.output, 0, n * H) as number[]);
  return { ...e, routingAgreement: routingAgreement(yIds, rIds, k), dropRate: dropRate(a.dropped, a.assignments), tokensCompared: n };
}
