// Router and routing-plan cases with exact expectations.
import { createMoeLayer, type MoeLayerOptions } from '../../lib';
import { refRoute, type RefConfig } from '../reference/moe_reference';
import { gaussian, makeWeights } from '../helpers';

async function layerFor(c: RefConfig, router?: Float32Array) {
  const w = makeWeights(c, 3);
  if (router) w.router = router;
  const opts: MoeLayerOptions = { ...c, threads: 2, weights: w };
  return { layer: await createMoeLayer(opts), w };
}

test('all-equal logits give ids 0..k-1 (lower index wins ties)', async () => {
  const c: RefConfig = { hidden: 16, intermediate: 8, experts: 9, topK: 4, scoring: 'softmax', renormalize: true };
  const router = new Float32Array(9 * 16);
  const row = gaussian(16, 4);
  for (let e = 0; e < 9; e++) router.set(row, e * 16);
  const { layer } = await layerFor(c, router);
  const r = await layer.route(gaussian(3 * 16, 5));
  expect(Array.from(r.expertIds)).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
  r.expertWeights.forEach((w) => expect(w).toBeCloseTo(0.25, 6));
  layer.close();
});

test('dropped groups score 0.0, as the DeepSeek code: with negative biases they outrank kept experts', async () => {
  // 8 experts in 4 groups of 2, keep 2, k = 4. Sigmoid scores lie in (0, 1), so the biases fix the
  // outcome for any input: groups 0 and 1 are kept (top-2 sums > -0.5 against < -2 for groups 2
  // and 3); experts 0, 1, 2 are the three best; kept expert 3 has a selection score < -2, below
  // the 0.0 of the masked experts 4..7, so the modelling code's
  // topk(masked_fill(~mask, 0.0)) takes a dropped group's expert fourth, never expert 3 (the old
  // -inf masking took expert 3). Among the tied 0.0s the lowest index, 4, wins.
  const bias = Float32Array.from([3, 3, 2.5, -3, -2, -2, -2.5, -2.5]);
  const c: RefConfig = {
    hidden: 24,
    intermediate: 8,
    experts: 8,
    topK: 4,
    scoring: 'sigmoid',
    renormalize: true,
    routedScalingFactor: 2.5,
    groups: { count: 4, keep: 2 },
    selectionBias: bias,
  };
  const { layer, w } = await layerFor(c);
  const T = 9,
    x = gaussian(T * 24, 6);
  const r = await layer.route(x);
  const ref = refRoute(c, w, x);
  expect(Array.from(r.expertIds)).toEqual(Array.from(ref.ids));
  for (let t = 0; t < T; t++) {
    expect(Array.from(r.expertIds.subarray(4 * t, 4 * t + 4)).sort()).toEqual([0, 1, 2, 4]);
    // Weights are the unbiased sigmoid scores (the masked expert's own score, as scores.gather),
    // renormalised and scaled.
    const score = (e: number) => {
      let d = 0;
      for (let h = 0; h < 24; h++) d += x[t * 24 + h] * w.router[e * 24 + h];
      return 1 / (1 + Math.exp(-d));
    };
    const ids = Array.from(r.expertIds.subarray(4 * t, 4 * t + 4));
    const sum = ids.reduce((a, e) => a + score(e), 0);
    ids.forEach((e, j) => expect(r.expertWeights[4 * t + j]).toBeCloseTo((2.5 * score(e)) / sum, 5));
  }
  layer.close();
});

test('grouped top-k at odd sizes with negative biases matches the fp64 reference (top2-sum and max)', async () => {
  // 45 experts in 5 groups of 9, keep 2, k = 7: biases around -0.6 make many kept selection
  // scores negative, so 0.0-masked experts are chosen for some tokens; both group scores.
  const E = 45,
    H = 37,
    T = 61;
  const bias = gaussian(E, 21, 0.3).map((v) => v - 0.6);
  let maskedPicks = 0;
  for (const score of ['top2-sum', 'max'] as const) {
    const c: RefConfig = {
      hidden: H,
      intermediate: 8,
      experts: E,
      topK: 7,
      scoring: 'sigmoid',
      renormalize: true,
      routedScalingFactor: 1.5,
      groups: { count: 5, keep: 2, score },
      selectionBias: bias,
    };
    const { layer, w } = await layerFor(c);
    const x = gaussian(T * H, 22);
    const r = await layer.route(x);
    const ref = refRoute(c, w, x);
    expect(Array.from(r.expertIds)).toEqual(Array.from(ref.ids));
    ref.weights.forEach((v, i) => expect(r.expertWeights[i]).toBeCloseTo(v, 5));
    maskedPicks += ref.maskedPicks;
    layer.close();
  }
  expect(maskedPicks).toBeGreaterThan(0);
});

test("groups scored by their best expert ('max', DeepSeek-V2 group_limited_greedy) differ from top2-sum", async () => {
  // Softmax over 39 experts in 3 groups of 13, keep 1, k = 5: the fp64 reference under each rule;
  // the two rules keep different groups for some tokens, and the engine follows the one asked for.
  const base: RefConfig = {
    hidden: 29,
    intermediate: 8,
    experts: 39,
    topK: 5,
    scoring: 'softmax',
    renormalize: false,
    routedScalingFactor: 16,
    groups: { count: 3, keep: 1 },
  };
  const x = gaussian(53 * 29, 23, 2);
  const ids: Record<string, Int32Array> = {};
  for (const score of [undefined, 'top2-sum', 'max'] as const) {
    const c: RefConfig = { ...base, groups: { count: 3, keep: 1, ...(score ? { score } : {}) } };
    const { layer, w } = await layerFor(c);
    const r = await layer.route(x);
    const ref = refRoute(c, w, x);
    expect(Array.from(r.expertIds)).toEqual(Array.from(ref.ids));
    ref.weights.forEach((v, i) => expect(r.expertWeights[i]).toBeCloseTo(v, 4));
    ids[score ?? 'default'] = r.expertIds;
    layer.close();
  }
  expect(Array.from(ids.default)).toEqual(Array.from(ids['top2-sum']));
  expect(Array.from(ids.max)).not.toEqual(Array.from(ids['top2-sum']));
});

test('the bias affects selection only, not the weights', async () => {
  const bias = new Float32Array(6).fill(0);
  bias[5] = 10; // expert 5 always selected
  const c: RefConfig = { hidden: 20, intermediate: 8, experts: 6, topK: 2, scoring: 'sigmoid', renormalize: false, selectionBias: bias };
  const { layer, w } = await layerFor(c);
  const x = gaussian(4 * 20, 7);
  const r = await layer.route(x);
  const ref = refRoute(c, w, x);
  for (let t = 0; t < 4; t++) {
    expect(r.expertIds[2 * t]).toBe(5);
    expect(r.expertWeights[2 * t]).toBeLessThan(1); // a sigmoid score, not score + 10
    expect(r.expertWeights[2 * t]).toBeCloseTo(ref.weights[2 * t], 6);
  }
  layer.close();
});

test('sigmoid with and without renormalisation, and the scaling factor', async () => {
  for (const renormalize of [true, false]) {
    const c: RefConfig = { hidden: 30, intermediate: 8, experts: 12, topK: 3, scoring: 'sigmoid', renormalize, routedScalingFactor: 2.5 };
    const { layer, w } = await layerFor(c);
    const x = gaussian(6 * 30, 8);
    const r = await layer.route(x);
    const ref = refRoute(c, w, x);
    expect(Array.from(r.expertIds)).toEqual(Array.from(ref.ids));
    ref.weights.forEach((v, i) => expect(r.expertWeights[i]).toBeCloseTo(v, 5));
    if (renormalize) for (let t = 0; t < 6; t++) expect(r.expertWeights[3 * t] + r.expertWeights[3 * t + 1] + r.expertWeights[3 * t + 2]).toBeCloseTo(2.5, 5);
    layer.close();
  }
});

test('capacity drops are counted exactly, latest tokens first', async () => {
  // All tokens pick experts 0 and 1 (biased); capacity = ceil(1.0 · 10 · 2 / 4) = 5 per expert.
  const bias = new Float32Array([10, 9, 0, 0]);
  const c: RefConfig = { hidden: 16, intermediate: 8, experts: 4, topK: 2, scoring: 'sigmoid', renormalize: true, selectionBias: bias, capacityFactor: 1 };
  const { layer } = await layerFor(c);
  const r = await layer.forward(gaussian(10 * 16, 9));
  expect(r.stats.capacity).toBe(5);
  expect(r.stats.dropped).toBe(10); // 10 tokens × 2 choices, 5 kept per expert
  expect(r.stats.assignments).toBe(10);
  expect(Array.from(r.stats.expertCounts)).toEqual([5, 5, 0, 0]);
  // Tokens 5..9 got nothing from the routed experts.
  for (let t = 5; t < 10; t++) for (let h = 0; h < 16; h++) expect(r.output[t * 16 + h]).toBe(0);
  layer.close();
});
