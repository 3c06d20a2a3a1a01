// Layer fidelity of an engine output against the fp64 reference on the sampled tokens
// (arithmetic on results only). The one implementation of the error measures: the CAP runner
// (lib/cap/accuracy.ts) uses vectorErrors and routingAgreement from here.
import { MoecapRangeError } from './errors';

export interface Fidelity {
  relativeL2: number; // ‖y − y_ref‖ / ‖y_ref‖ over the sample
  maxAbsError: number;
  cosine: number;
  routingAgreement: number; // fraction of tokens whose top-k set equals the fp64 router's
  tokensCompared: number;
}

/**
 * ‖y − r‖/‖r‖ (‖y − r‖ when r = 0), max |y − r|, cos(y, r) over equal-length vectors.
 * Cosine of a zero vector: both zero → 1 (identical outputs); only one zero → 0 (no direction to
 * agree with, so no agreement is claimed).
 */
export function vectorErrors(y: ArrayLike<number>, r: ArrayLike<number>): { relativeL2: number; maxAbsError: number; cosine: number } {
  if (y.length !== r.length) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `length mismatch: ${y.length} vs ${r.length}`);
  let d2 = 0,
    r2 = 0,
    y2 = 0,
    dot = 0,
    maxAbs = 0;
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
    cosine: r2 > 0 && y2 > 0 ? dot / Math.sqrt(r2 * y2) : r2 === 0 && y2 === 0 ? 1 : 0,
  };
}

/** Fraction of tokens whose top-k id set (order ignored) equals the reference's; 1 for no tokens. */
export function routingAgreement(ids: ArrayLike<number>, refIds: ArrayLike<number>, topK: number): number {
  if (ids.length !== refIds.length) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', `length mismatch: ${ids.length} vs ${refIds.length}`);
  if (!(topK > 0) || ids.length % topK) throw new MoecapRangeError('ERR_INVALID_ARGUMENT', 'ids length must be a multiple of topK');
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

/** Errors over the sampled tokens' outputs; routing agreement over every token (the reference routes all). */
export function fidelity(
  output: Float32Array,
  ids: Int32Array,
  ref: { output: Float64Array; expertIds: Int32Array; sample: Int32Array },
  hidden: number,
  topK: number,
): Fidelity {
  const n = ref.sample.length;
  const y = new Float64Array(n * hidden);
  ref.sample.forEach((t, s) => y.set(output.subarray(t * hidden, (t + 1) * hidden), s * hidden));
  return {
    ...vectorErrors(y, ref.output.subarray(0, n * hidden)),
    routingAgreement: routingAgreement(ids, ref.expertIds, topK),
    tokensCompared: n,
  };
}
