// Layer fidelity of an engine output against the fp64 reference on the sampled tokens
// (arithmetic on results only; see shared/REFERENCE.md "Accuracy").
export interface Fidelity {
  relativeL2: number;     // ‖y − y_ref‖ / ‖y_ref‖ over the sample
  maxAbsError: number;
  cosine: number;
  routingAgreement: number;  // fraction of tokens whose top-k set equals the fp64 router's
  tokensCompared: number;
}

export function fidelity(
  output: Float32Array,
  ids: Int32Array,
  ref: { output: Float64Array; expertIds: Int32Array; sample: Int32Array },
  hidden: number,
  topK: number,
): Fidelity {
  let diff2 = 0, ref2 = 0, out2 = 0, dot = 0, maxAbs = 0;
  ref.sample.forEach((t, s) => {
    for (let h = 0; h < hidden; h++) {
      const y = output[t * hidden + h], r = ref.output[s * hidden + h];
      const d = y - r;
      diff2 += d * d;
      ref2 += r * r;
      out2 += y * y;
      dot += y * r;
      if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
    }
  });
  const tokens = ids.length / topK;
  let agree = 0;
  for (let t = 0; t < tokens; t++) {
    const a = Array.from(ids.subarray(t * topK, (t + 1) * topK)).sort((x, y) => x - y);
    const b = Array.from(ref.expertIds.subarray(t * topK, (t + 1) * topK)).sort((x, y) => x - y);
    if (a.every((v, i) => v === b[i])) agree++;
  }
  return {
    relativeL2: ref2 > 0 ? Math.sqrt(diff2 / ref2) : Math.sqrt(diff2),
    maxAbsError: maxAbs,
    cosine: ref2 > 0 && out2 > 0 ? dot / Math.sqrt(ref2 * out2) : 1,
    routingAgreement: tokens > 0 ? agree / tokens : 1,
    tokensCompared: ref.sample.length,
  };
}
