// fidelity() (the public one) and the CAP runner's layerFidelity share one implementation of the
// error measures; the cosine of a zero vector is defined once: both zero → 1, one zero → 0.
import { fidelity, vectorErrors } from '../../lib/fidelity';
import { layerFidelity } from '../../lib/cap/accuracy';

function rand(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

test('cosine of zero vectors: both zero is 1, one zero is 0', () => {
  expect(vectorErrors([0, 0, 0], [0, 0, 0]).cosine).toBe(1);
  expect(vectorErrors([0, 0, 0], [1, -2, 0.5]).cosine).toBe(0);
  expect(vectorErrors([1, -2, 0.5], [0, 0, 0]).cosine).toBe(0);
  const ref = (out: number[]) => ({ output: Float64Array.from(out), expertIds: Int32Array.from([0, 1]), sample: Int32Array.from([0]) });
  expect(fidelity(new Float32Array(3), Int32Array.from([1, 0]), ref([0, 0, 0]), 3, 2).cosine).toBe(1);
  expect(fidelity(new Float32Array(3), Int32Array.from([1, 0]), ref([1, 2, 3]), 3, 2).cosine).toBe(0);
  expect(fidelity(Float32Array.from([1, 2, 3]), Int32Array.from([1, 0]), ref([0, 0, 0]), 3, 2).cosine).toBe(0);
});

test('fidelity() and layerFidelity() give the same errors on random outputs', () => {
  const T = 7,
    H = 5,
    k = 2;
  const output = Float32Array.from(rand(T * H, 3));
  const sample = Int32Array.from([0, 3, 6]);
  const refOut = Float64Array.from(rand(sample.length * H, 4));
  const ids = Int32Array.from({ length: T * k }, (_, i) => (i * 3) % 8);
  const refIds = Int32Array.from(ids, (v, i) => (i === 6 ? 7 - v : v)); // token 3 differs
  const f = fidelity(output, ids, { output: refOut, expertIds: refIds, sample }, H, k);
  const g = layerFidelity({ output, ids, reference: { output: refOut, expertIds: refIds, sample }, hidden: H, topK: k, dropped: 0, assignments: T * k });
  expect(f.relativeL2).toBe(g.relativeL2);
  expect(f.maxAbsError).toBe(g.maxAbsError);
  expect(f.cosine).toBe(g.cosine);
  expect(f.tokensCompared).toBe(3);
  expect(f.routingAgreement).toBeCloseTo(6 / 7, 14); // over every token
  expect(g.routingAgreement).toBeCloseTo(2 / 3, 14); // over the sampled tokens
  // by hand
  let d2 = 0,
    r2 = 0;
  sample.forEach((t, s) => {
    for (let h = 0; h < H; h++) {
      const d = output[t * H + h] - refOut[s * H + h];
      d2 += d * d;
      r2 += refOut[s * H + h] ** 2;
    }
  });
  expect(f.relativeL2).toBeCloseTo(Math.sqrt(d2 / r2), 14);
});
