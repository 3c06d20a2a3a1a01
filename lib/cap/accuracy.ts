// Layer fidelity against the fp64 reference (test/reference/moe_reference.ts): relative L2, max abs
// error, cosine, routing agreement, drop rate. Arithmetic on results only.
import { routingAgreement, vectorErrors } from '../fidelity';

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

// One implementation of the error measures, shared with the public fidelity().
export { vectorErrors, routingAgreement };

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
