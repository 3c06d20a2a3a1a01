// The cost axis prices the hardware each configuration needs: hand-computed bills of materials,
// offload buying cheaper hardware at a loss of speed, int4 needing less memory than bf16, GPU counts.
import { cpuBillOfMaterials, formatUsd, gpuBillOfMaterials, gpusNeeded, memoryNeed } from '../../lib/cap/bill_of_materials';
import { costPerMillionTokens, DEFAULT_PRICES, mergePrices } from '../../lib/cap/cost';
import { configCost } from '../../lib/cap/scoring';

const prices = mergePrices(DEFAULT_PRICES, {
  cpuPerCore: { priceUsd: 100, powerW: 0 },
  dramPerGB: { priceUsd: 5, powerW: 0 },
  nvmePerGB: { priceUsd: 0.1, powerW: 0 },
  usdPerKWh: 0,
  amortisationYears: 1,
  utilisation: 1,
});
// 4 layers, 10 experts of 1 GB each, router 1 MB, no shared expert; one token of H=1000, F=500, k=2.
const shape = { layers: 4, experts: 10, expertBytes: 1e9, routerBytes: 1e6, sharedBytes: 0, tokens: 1, hidden: 1000, intermediate: 500, topK: 2 };
const buffers = 4 * 1 * (2 * 1000 + 2 * (500 + 1000)); // 20 000 B

test('memory need by hand: resident weights, buffers, offloaded experts', () => {
  expect(memoryNeed({ ...shape, residentExperts: 10 })).toEqual({
    residentWeightBytes: 4 * (1e6 + 10e9),
    bufferBytes: buffers,
    kvCacheBytes: 0,
    offloadedBytes: 0,
  });
  expect(memoryNeed({ ...shape, residentExperts: 3 })).toEqual({
    residentWeightBytes: 4 * (1e6 + 3e9),
    bufferBytes: buffers,
    kvCacheBytes: 0,
    offloadedBytes: 4 * 7e9,
  });
  expect(() => memoryNeed({ ...shape, residentExperts: 11 })).toThrow(/residentExperts/);
});

test('offloading experts lowers the hardware price and, at the measured loss of speed, the cost per 1M tokens', () => {
  const all = cpuBillOfMaterials(prices, { cores: 2, need: memoryNeed({ ...shape, residentExperts: 10 }) });
  const off = cpuBillOfMaterials(prices, { cores: 2, need: memoryNeed({ ...shape, residentExperts: 3 }) });
  const dramAll = (4 * (1e6 + 10e9) + buffers) / 1e9; // 40.00402 GB
  const dramOff = (4 * (1e6 + 3e9) + buffers) / 1e9; // 12.00402 GB
  expect(all.map((c) => c.priceUsd)).toEqual([200, expect.closeTo(5 * dramAll, 9)]);
  expect(off.map((c) => c.name)).toEqual(['cpu cores', 'dram', 'nvme (offload tier)']);
  expect(off.map((c) => c.priceUsd)).toEqual([200, expect.closeTo(5 * dramOff, 9), expect.closeTo(0.1 * 28, 9)]);
  const priceAll = 200 + 5 * dramAll; // $400.0201
  const priceOff = 200 + 5 * dramOff + 2.8; // $262.8201
  // Offload runs at 80 tok/s instead of 100: cost = price / 8760 h × (1e6 / tps) / 3600 s.
  const cost = (price: number, tps: number) => ((price / 8760) * (1e6 / tps)) / 3600;
  const run = (c: typeof all, tps: number) =>
    costPerMillionTokens({
      components: c,
      amortisationYears: 1,
      utilisation: 1,
      usdPerKWh: 0,
      power: { kind: 'tdp-model', watts: 0, source: 't' },
      secondsPer1MTokens: 1e6 / tps,
    });
  const a = run(all, 100),
    o = run(off, 80);
  expect(a.hardwarePriceUsd).toBeCloseTo(priceAll, 9);
  expect(o.hardwarePriceUsd).toBeCloseTo(priceOff, 9);
  expect(a.usdPer1MTokens).toBeCloseTo(cost(priceAll, 100), 12);
  expect(o.usdPer1MTokens).toBeCloseTo(cost(priceOff, 80), 12);
  expect(o.usdPer1MTokens).toBeLessThan(a.usdPer1MTokens); // cheaper despite slower
  // and the cost axis is no longer tokens/s in disguise: cost × tokens/s differs between the two
  expect(o.usdPer1MTokens * 80).not.toBeCloseTo(a.usdPer1MTokens * 100, 6);
});

test('int4 needs less memory than bf16 for the same experts', () => {
  const bf16 = memoryNeed({ ...shape, expertBytes: 3 * 1000 * 500 * 2, residentExperts: 10 });
  const int4 = memoryNeed({ ...shape, expertBytes: 3 * 1000 * 500 * 0.5625, residentExperts: 10 });
  expect(int4.residentWeightBytes).toBeLessThan(bf16.residentWeightBytes);
  const c = (n: typeof bf16) => cpuBillOfMaterials(prices, { cores: 1, need: n }).reduce((s, x) => s + x.priceUsd, 0);
  expect(c(bf16) - c(int4)).toBeCloseTo((5 * 4 * 10 * 3 * 1000 * 500 * (2 - 0.5625)) / 1e9, 9);
});

test('GPU configurations: as many GPUs as their memory takes to hold the resident set; host DRAM for offloaded experts', () => {
  expect(gpusNeeded(1, 80e9)).toBe(1);
  expect(gpusNeeded(80e9, 80e9)).toBe(1);
  expect(gpusNeeded(80e9 + 1, 80e9)).toBe(2);
  const need = memoryNeed({ ...shape, layers: 20, residentExperts: 10 }); // 200.02 GB resident
  const g = gpuBillOfMaterials(prices, { gpu: 'h100-sxm', gpuMemoryBytes: 80e9, need });
  expect(g).toEqual([expect.objectContaining({ name: 'h100-sxm', quantity: 3, priceUsd: 3 * 30000 })]);
  const gOff = gpuBillOfMaterials(prices, { gpu: 'h100-sxm', gpuMemoryBytes: 80e9, need: memoryNeed({ ...shape, layers: 20, residentExperts: 3 }) });
  expect(gOff.map((c) => [c.name, c.quantity])).toEqual([
    ['h100-sxm', 1],
    ['host dram (offload tier)', 140],
  ]);
  expect(gOff[1].priceUsd).toBeCloseTo(140 * 5, 9);
  expect(() => gpuBillOfMaterials(prices, { gpu: 'tpu', gpuMemoryBytes: 1, need })).toThrow(/no price for gpu 'tpu'/);
  const cost = configCost(prices, {
    device: { kind: 'gpu', gpu: 'h100-sxm', gpuMemoryBytes: 80e9 },
    need,
    counters: [],
    wallSeconds: 1,
    tokensPerSecond: 1000,
  });
  if (!('hardwarePriceUsd' in cost)) throw new Error('expected a cost');
  expect(cost.hardwarePriceUsd).toBe(90000);
});

test('money is printed to its precision', () => {
  expect(formatUsd(347.10396006400003)).toBe('347.10');
  expect(formatUsd(0.0073952)).toBe('0.00740');
  expect(formatUsd(0)).toBe('0');
});
