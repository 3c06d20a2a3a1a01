// The fp32 engine against the plain fp64 reference, for every ISA this CPU supports.
import { createMoeLayer, systemInfo, type MoeLayerOptions } from '../../lib';
import { refForward, refForwardDense, refRoute, type RefConfig } from '../reference/moe_reference';
import { bitwiseEqual, gaussian, makeWeights, relL2 } from '../helpers';

const ISAS = systemInfo().supportedIsas as ('avx512' | 'avx2' | 'generic')[];

interface Case {
  name: string;
  cfg: RefConfig;
  tokens: number[];
}

const base = { scoring: 'softmax' as const, renormalize: true };
const CASES: Case[] = [
  { name: 'odd sizes H=72 F=40 E=7 k=3', cfg: { ...base, hidden: 72, intermediate: 40, experts: 7, topK: 3 }, tokens: [1, 333] },
  { name: 'single expert E=1 k=1', cfg: { ...base, hidden: 33, intermediate: 17, experts: 1, topK: 1 }, tokens: [1, 9] },
  { name: 'k=1', cfg: { ...base, hidden: 50, intermediate: 24, experts: 6, topK: 1 }, tokens: [1, 31] },
  { name: 'k=E', cfg: { ...base, hidden: 40, intermediate: 20, experts: 5, topK: 5 }, tokens: [1, 13] },
  { name: 'sigmoid, renormalised', cfg: { ...base, scoring: 'sigmoid', hidden: 64, intermediate: 48, experts: 16, topK: 4 }, tokens: [7] },
  {
    name: 'sigmoid, not renormalised',
    cfg: { ...base, scoring: 'sigmoid', renormalize: false, hidden: 64, intermediate: 48, experts: 16, topK: 4 },
    tokens: [7],
  },
  { name: 'scaling factor 2.5', cfg: { ...base, routedScalingFactor: 2.5, hidden: 48, intermediate: 32, experts: 8, topK: 2 }, tokens: [5] },
  {
    name: 'grouped top-k with negative bias (DeepSeek-V3 style)',
    cfg: {
      ...base,
      scoring: 'sigmoid',
      routedScalingFactor: 2.5,
      hidden: 40,
      intermediate: 24,
      experts: 16,
      topK: 4,
      groups: { count: 4, keep: 2 },
      selectionBias: gaussian(16, 77, 0.3).map((v) => -Math.abs(v)),
    },
    tokens: [1, 21],
  },
  { name: 'shared expert', cfg: { ...base, hidden: 48, intermediate: 16, experts: 6, topK: 2, sharedExperts: { intermediate: 40 } }, tokens: [1, 11] },
  {
    name: 'gated shared expert, no renorm (Qwen)',
    cfg: { ...base, renormalize: false, hidden: 48, intermediate: 16, experts: 6, topK: 2, sharedExperts: { intermediate: 40, gated: true } },
    tokens: [11],
  },
  { name: 'E=70 k=6 (3 router panels)', cfg: { ...base, hidden: 40, intermediate: 24, experts: 70, topK: 6 }, tokens: [1, 3, 40] },
  { name: 'capacity factor 0.5', cfg: { ...base, hidden: 40, intermediate: 24, experts: 4, topK: 2, capacityFactor: 0.5 }, tokens: [37] },
];

function layerOptions(c: RefConfig, seed: number, isa: string): MoeLayerOptions {
  const w = makeWeights(c, seed);
  return { ...c, isa: isa as 'auto', threads: 2, poison: true, weights: w };
}

describe.each(ISAS)('fp32 layer on %s', (isa) => {
  test.each(CASES)('$name matches the fp64 reference (rel L2 < 1e-5)', async ({ cfg, tokens }) => {
    const opts = layerOptions(cfg, 11, isa);
    const layer = await createMoeLayer(opts);
    expect(layer.info().isa).toBe(isa);
    for (const T of tokens) {
      const x = gaussian(T * cfg.hidden, 100 + T);
      const r = await layer.forward(x);
      const routing = refRoute(cfg, opts.weights as never, x);
      expect(Array.from(r.expertIds)).toEqual(Array.from(routing.ids));
      for (let i = 0; i < routing.weights.length; i++) expect(r.expertWeights[i]).toBeCloseTo(routing.weights[i], 5);
      const ref = refForward(cfg, opts.weights as never, x, routing);
      expect(r.output.every(Number.isFinite)).toBe(true);
      expect(relL2(r.output, ref)).toBeLessThan(1e-5);
      expect(r.stats.dropped).toBe(routing.dropped);
      expect(r.stats.tokens).toBe(T);
      expect(r.stats.distinctExperts).toBe(new Set(Array.from(routing.ids).filter((_, a) => routing.kept[a])).size);
    }
    layer.close();
  });
});

describe('identities', () => {
  const cfg: RefConfig = { ...base, hidden: 72, intermediate: 40, experts: 7, topK: 3, sharedExperts: { intermediate: 24 } };

  // The shared-expert case, and E = 70 (three router panels).
  const ALONE: [string, RefConfig, number][] = [
    ['shared expert', cfg, 5],
    ['E=70', { ...base, hidden: 56, intermediate: 24, experts: 70, topK: 6 }, 8],
  ];
  describe.each(ISAS)('%s', (isa) => {
    test.each(ALONE)('a token alone equals the same token inside a batch, bitwise (%s)', async (_name, c, seed) => {
      const layer = await createMoeLayer(layerOptions(c, seed, isa));
      const T = 40,
        H = c.hidden,
        k = c.topK;
      const x = gaussian(T * H, 9 + seed);
      const batch = await layer.forward(x);
      for (const t of [0, 17, 39]) {
        const alone = await layer.forward(x.slice(t * H, (t + 1) * H));
        expect(Array.from(alone.expertIds)).toEqual(Array.from(batch.expertIds.subarray(t * k, (t + 1) * k)));
        expect(bitwiseEqual(alone.expertWeights, batch.expertWeights.subarray(t * k, (t + 1) * k))).toBe(true);
        expect(bitwiseEqual(alone.output, batch.output.subarray(t * H, (t + 1) * H))).toBe(true);
      }
      layer.close();
    });
  });

  test('threads are pinned only when the pool uses every CPU (and pinThreads is not false); outputs are the same', async () => {
    const all = systemInfo().hardwareThreads;
    const x = gaussian(5 * cfg.hidden, 12);
    const pinned = await createMoeLayer({ ...layerOptions(cfg, 6, 'auto'), threads: all });
    expect(pinned.info().pinnedThreads).toBe(all > 1 && process.platform === 'linux'); // no CPU masks elsewhere
    const one = await createMoeLayer({ ...layerOptions(cfg, 6, 'auto'), threads: 1 });
    expect(one.info().pinnedThreads).toBe(false);
    const free = await createMoeLayer({ ...layerOptions(cfg, 6, 'auto'), threads: all, pinThreads: false });
    expect(free.info().pinnedThreads).toBe(false);
    // Huge pages are asked for on Linux unless MOECAP_NO_HUGEPAGES is set (the addon reads the process environment).
    expect(one.info().hugePages).toBe(process.platform === 'linux' && process.env.MOECAP_NO_HUGEPAGES === undefined);
    const [a, b, c] = [await pinned.forward(x), await free.forward(x), await one.forward(x)];
    expect(bitwiseEqual(a.output, b.output)).toBe(true);
    expect(bitwiseEqual(a.output, c.output)).toBe(true);
    for (const l of [pinned, one, free]) l.close();
  });

  test('repeat runs are bitwise identical', async () => {
    const layer = await createMoeLayer(layerOptions(cfg, 6, 'auto'));
    const x = gaussian(64 * cfg.hidden, 10);
    const a = await layer.forward(x);
    const b = await layer.forward(x);
    expect(bitwiseEqual(a.output, b.output)).toBe(true);
    layer.close();
  });

  test('the dense form (all experts, unselected weight 0) equals the sparse form', async () => {
    const opts = layerOptions(cfg, 7, 'auto');
    const layer = await createMoeLayer(opts);
    const x = gaussian(9 * cfg.hidden, 12);
    const r = await layer.forward(x);
    const dense = refForwardDense(cfg, opts.weights as never, x);
    const sparse = refForward(cfg, opts.weights as never, x);
    expect(relL2(sparse, dense)).toBeLessThan(1e-12);
    expect(relL2(r.output, dense)).toBeLessThan(1e-5);
    layer.close();
  });

  test('softmax + top-k + renormalise equals a softmax over the k selected logits', async () => {
    const c: RefConfig = { ...base, hidden: 32, intermediate: 8, experts: 10, topK: 3 };
    const opts = layerOptions(c, 8, 'auto');
    const layer = await createMoeLayer(opts);
    const x = gaussian(5 * c.hidden, 13);
    const r = await layer.route(x);
    const w = opts.weights as { router: Float32Array };
    for (let t = 0; t < 5; t++) {
      const ids = Array.from(r.expertIds.subarray(t * 3, t * 3 + 3));
      const logits = ids.map((e) => {
        let d = 0;
        for (let h = 0; h < c.hidden; h++) d += x[t * c.hidden + h] * w.router[e * c.hidden + h];
        return d;
      });
      const m = Math.max(...logits);
      const s = logits.reduce((a, l) => a + Math.exp(l - m), 0);
      ids.forEach((_, j) => expect(r.expertWeights[t * 3 + j]).toBeCloseTo(Math.exp(logits[j] - m) / s, 6));
    }
    layer.close();
  });

  test('several forwards in flight on one and on several layers', async () => {
    const a = await createMoeLayer(layerOptions(cfg, 5, 'auto'));
    const b = await createMoeLayer(layerOptions(cfg, 6, 'auto'));
    const xs = [1, 2, 3, 4, 5, 6].map((i) => gaussian(i * 7 * cfg.hidden, 200 + i));
    const serial: Float32Array[] = [];
    for (const x of xs) serial.push((await a.forward(x)).output);
    const parallel = await Promise.all([...xs.map((x) => a.forward(x)), ...xs.map((x) => b.forward(x))]);
    xs.forEach((_, i) => expect(bitwiseEqual(parallel[i].output, serial[i])).toBe(true));
    a.close();
    b.close();
  });
});
