// The CAP scoring functions (lib/cap/scoring.ts) are pure: the same figures in, the same result out,
// checked here against the formulas worked by hand.
import { configCost, offloadFigures, utilisation } from '../../lib/cap/scoring';
import { costPerMillionTokens, DEFAULT_PRICES, powerFrom } from '../../lib/cap/cost';
import { cpuBillOfMaterials } from '../../lib/cap/bill_of_materials';
import type { PeakSource } from '../../lib/cap/hardware';

const peaks: PeakSource = {
  kind: 'measured',
  name: 'box',
  memoryBandwidth: 80e9,
  peakFlops: { f32: 500e9, bf16: 1000e9, int8: null },
  offloadBandwidth: 2e9,
  tdpW: 200,
  source: 'test',
};

test('S-MBU and S-MFU against the peaks, and why not when a peak is missing', () => {
  const u = utilisation(peaks, { dtype: 'bf16', meanBytes: 4e6, medianSeconds: 1e-4, tokensPerSecond: 1e4, flopsPerToken: 3e7 });
  expect(u.smbu).toEqual({ value: 4e6 / 1e-4 / 80e9, bytesPerSample: 4e6, peakBandwidth: 80e9, peaks: 'measured: box (test)' });
  expect(u.smfu).toEqual({ value: (1e4 * 3e7) / 1000e9, flopsPerToken: 3e7, peakFlops: 1000e9, peakDtype: 'bf16', peaks: 'measured: box (test)' });
  expect(utilisation(peaks, { dtype: 'int4', meanBytes: 1, medianSeconds: 1, tokensPerSecond: 1, flopsPerToken: 1 }).smfu).toEqual({
    available: false,
    reason: 'box gives no int8 peak',
  });
  const none = utilisation({ available: false, reason: 'no peaks' }, { dtype: 'f32', meanBytes: 1, medianSeconds: 1, tokensPerSecond: 1, flopsPerToken: 1 });
  expect(none).toEqual({ smbu: { available: false, reason: 'no peaks' }, smfu: { available: false, reason: 'no peaks' } });
});

test('offload figures: means per sample, rates over the counted time', () => {
  const totals = { bytes: 6e6, hits: 30, misses: 10, stallNs: 3e6, ioNs: 2e6 };
  const f = offloadFigures(peaks, { residentFraction: 0.5, samples: 3, medianSeconds: 0.01, totals, cacheExperts: 4, policy: 'lru', coldCache: true });
  expect(f).toEqual({
    value: 2e6 / 0.01 / 2e9,
    bytesMoved: 2e6,
    tierBandwidth: 2e6 / 0.01,
    ioBandwidth: 6e6 / 2e-3,
    hitRate: 0.75,
    stallMs: 1,
    cacheExperts: 4,
    residentFraction: 0.5,
    policy: 'lru',
    coldCache: true,
    peakBandwidth: 2e9,
  });
  expect(offloadFigures(peaks, { residentFraction: 1, samples: 3, medianSeconds: 1, totals, cacheExperts: 0, policy: 'lru', coldCache: false })).toEqual({
    available: false,
    reason: 'all experts resident (no --offload)',
  });
});

test('cost: the bill of materials the config needs and the TDP model without an energy counter', () => {
  const need = { residentWeightBytes: 15e9, bufferBytes: 1e9, kvCacheBytes: 0, offloadedBytes: 0 };
  const c = configCost(DEFAULT_PRICES, {
    device: { kind: 'cpu', cores: 2 },
    need,
    counters: { available: false, reason: 'none' },
    wallSeconds: 3,
    tokensPerSecond: 5000,
  });
  const components = cpuBillOfMaterials(DEFAULT_PRICES, { cores: 2, need });
  expect(components.map((x) => x.priceUsd)).toEqual([2 * 123, 16 * 4]);
  expect(c).toEqual(
    costPerMillionTokens({
      components,
      amortisationYears: DEFAULT_PRICES.amortisationYears,
      utilisation: DEFAULT_PRICES.utilisation,
      usdPerKWh: DEFAULT_PRICES.usdPerKWh,
      power: powerFrom(components, null, 3),
      secondsPer1MTokens: 200,
    }),
  );
});
