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

test('grouped top-k with a negative bias masks dropped groups with -inf', async () => {
  // 8 experts in 4 groups of 2, keep 1 group, k = 2: only the best group's experts may be chosen,
  // even though the bias makes every selection score negative.
  const c: RefConfig = { hidden: 24, intermediate: 8, experts: 8, topK: 2, scoring: 'sigmoid', renormalize: true,
    groups: { count: 4, keep: 1 }, selectionBias: new Float32Array(8).fill(-5) };
  const { layer, w } = await layerFor(c);
  const x = gaussian(17 * 24, 6);
  const r = await layer.route(x);
  const ref = refRoute(c, w, x);
  expect(Array.from(r.expertIds)).toEqual(Array.from(ref.ids));
  for (let t = 0; t < 17; t++) {
    const g0 = Math.floor(r.expertIds[2 * t] / 2), g1 = Math.floor(r.expertIds[2 * t + 1] / 2);
    expect(g0).toBe(g1);
    expect(r.expertWeights[2 * t] + r.expertWeights[2 * t + 1]).toBeCloseTo(1, 6);
  }
  layer.close();
});

test('the bias affects selection only, not the weights', async () => {
  const bias = new Float32Array(6).fill(0);
  bias[5] = 10;  // expert 5 always selected
  const c: RefConfig = { hidden: 20, intermediate: 8, experts: 6, topK: 2, scoring: 'sigmoid', renormalize: false, selectionBias: bias };
  const { layer, w } = await layerFor(c);
  const x = gaussian(4 * 20, 7);
  const r = await layer.route(x);
  const ref = refRoute(c, w, x);
  for (let t = 0; t < 4; t++) {
    expect(r.expertIds[2 * t]).toBe(5);
    expect(r.expertWeights[2 * t]).toBeLessThan(1);  // a sigmoid score, not score + 10
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
  expect(r.stats.dropped).toBe(10);  // 10 tokens × 2 choices, 5 kept per expert
  expect(r.stats.assignments).toBe(10);
  expect(Array.from(r.stats.expertCounts)).toEqual([5, 5, 0, 0]);
  // Tokens 5..9 got nothing from the routed experts.
  for (let t = 5; t < 10; t++) for (let h = 0; h < 16; h++) expect(r.output[t * 16 + h]).toBe(0);
  layer.close();
});
