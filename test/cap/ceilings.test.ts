// Ceilings on a noisy machine: peaks from the best windows, bandwidth as a distribution, and the
// warnings a profile must carry (spread, age, the ISA's ordering); flags above 1.
import { bandwidthFigure, likelyCauseAbove1, orderingViolations, peakFigure, peaksConverged, profileWarnings, topSpread } from '../../lib/cap/ceilings';
import { computePeakFor, findDatasheet, peaksFromDatasheet, peaksFromProfile, timeBoundPeakFor, type CpuMeasuredProfile } from '../../lib/cap/hardware';
import { utilisation, bandwidthNow } from '../../lib/cap/scoring';

const fig = (value: number, spread = 0.01) => ({ value, unit: 'FLOP/s', repeats: 40, spread });
const base: CpuMeasuredProfile = {
  kind: 'cpu-measured',
  key: 'box',
  cpuModel: 'Test CPU',
  cores: 2,
  memoryBytes: 1e10,
  isa: 'avx512',
  measuredAt: '2026-12-01T00:00:00Z',
  readBandwidth: { value: 5e10, unit: 'B/s', repeats: 30, spread: 0.1 },
  peakFlops: { f32: fig(5e11), bf16: fig(1e12), int8: fig(2e12) },
};
const NOW = new Date('2026-12-02T00:00:00Z');

test('a peak is the best window; its spread is how far the best three are apart', () => {
  const f = peakFigure([100, 40, 97, 60, 99], 'FLOP/s');
  expect(f).toMatchObject({ value: 100, repeats: 5, min: 40, max: 100 });
  expect(f.spread).toBeCloseTo((100 - 97) / 100, 12);
  expect(topSpread([1, 2])).toBe(1); // too few windows to trust
  expect(
    peaksConverged([
      [100, 99, 98.5],
      [10, 9.9, 9.95],
    ]),
  ).toBe(true);
  expect(
    peaksConverged([
      [100, 99, 98.5],
      [10, 5, 9],
    ]),
  ).toBe(false);
});

test('bandwidth keeps its distribution: p90 as the ceiling, p10/p50/p90 and (p90 − p10)/p50', () => {
  const s = [30, 65, 40, 50, 60, 35, 45, 55, 62, 33].map((g) => g * 1e9);
  const f = bandwidthFigure(s, 'B/s');
  const sorted = [...s].sort((a, b) => a - b);
  const q = (p: number) => {
    const h = (sorted.length - 1) * p,
      lo = Math.floor(h);
    return sorted[lo] + (h - lo) * (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]);
  };
  expect(f.value).toBeCloseTo(q(0.9), 3);
  expect(f.percentiles).toEqual({ p10: expect.closeTo(q(0.1), 3), p50: expect.closeTo(q(0.5), 3), p90: expect.closeTo(q(0.9), 3) });
  expect(f.spread).toBeCloseTo((q(0.9) - q(0.1)) / q(0.5), 12);
});

test('the ISA ordering check fires on a profile where int8 < bf16 or bf16 < fp32 (AVX-512 only)', () => {
  expect(orderingViolations(base)).toEqual([]);
  const bad = { ...base, peakFlops: { f32: fig(4.4e11), bf16: fig(9.1e11), int8: fig(4.4e11) } };
  expect(orderingViolations(bad)).toEqual([expect.stringMatching(/int8 dot peak 440 GOP\/s is below the bf16 dot peak 910 GFLOP\/s/)]);
  const bad2 = { ...base, peakFlops: { f32: fig(5e11), bf16: fig(4e11), int8: fig(2e12) } };
  expect(orderingViolations(bad2)).toEqual([expect.stringMatching(/bf16 dot peak .* below the fp32 FMA peak/)]);
  expect(orderingViolations({ ...bad, isa: 'avx2' })).toEqual([]);
  expect(profileWarnings(bad, NOW).map((w) => w.kind)).toEqual(['ordering']);
});

test('spread and age warnings; a quick profile says so; peaksFromProfile carries them and the sample counts', () => {
  expect(profileWarnings(base, NOW)).toEqual([]);
  const noisy = { ...base, peakFlops: { ...base.peakFlops, int8: fig(2e12, 0.4) }, readBandwidth: { ...base.readBandwidth, spread: 0.8 } };
  const w = profileWarnings(noisy, NOW);
  expect(w.map((x) => x.kind)).toEqual(['spread', 'spread']);
  expect(w[0].message).toMatch(/int8 dot peak: its best windows differ by 40%/);
  const old = profileWarnings({ ...base, measuredAt: '2026-09-01T00:00:00Z' }, NOW);
  expect(old).toEqual([{ kind: 'age', message: expect.stringMatching(/profile is 92 days old/) }]);
  expect(profileWarnings({ ...base, quick: true, budgetSeconds: 3 }, NOW)[0]).toMatchObject({ kind: 'quick' });
  // An x86 profile measured before AVX2 had an int8 loop says how to get S-MFU back.
  const noInt8 = { ...base, isa: 'avx2', peakFlops: { ...base.peakFlops, bf16: undefined, int8: undefined } };
  expect(profileWarnings(noInt8, NOW)).toEqual([
    { kind: 'missing', message: expect.stringMatching(/no int8 dot peak, which this version measures on avx2.*--recalibrate/) },
  ]);
  expect(profileWarnings({ ...noInt8, isa: 'generic' }, NOW)).toEqual([]);
  const p = peaksFromProfile({ ...noisy, quick: true }, NOW);
  expect(p.warnings).toHaveLength(3);
  expect(p.detail?.int8).toEqual({ statistic: 'median of 40 repeats', samples: 40, spread: 0.4 });
  expect(p.source).toMatch(/quick/);
});

test('S-MBU divides by the bandwidth measured around the config, keeps the calibrated figure, flags values above 1', () => {
  const peaks = peaksFromProfile(base, NOW);
  const a = { dtype: 'int8', meanBytes: 6e7, medianSeconds: 1e-3, tokensPerSecond: 1000, flopsPerToken: 3e9, workingSetBytes: 1e9 };
  // 6e7 B / 1 ms = 60 GB/s achieved; bandwidth around it 40 and 48 GB/s → 60/48; calibrated 60/50.
  const u = utilisation(peaks, { ...a, bandwidthNow: bandwidthNow(40e9, 48e9) });
  if (!('value' in u.smbu)) throw new Error('expected S-MBU');
  expect(u.smbu.value).toBeCloseTo(60 / 48, 12);
  expect(u.smbu.peakBandwidth).toBe(48e9);
  expect(u.smbu.calibrated?.value).toBeCloseTo(60 / 50, 12);
  expect(u.smbu.above1).toMatch(/read bandwidth moved during the config \(40\.0 GB\/s before, 48\.0 after\)/);
  // S-MFU: 1000 tok/s × 3e9 = 3e12 against int8 2e12 → 1.5, flagged with the peak's sample count
  if (!('value' in u.smfu)) throw new Error('expected S-MFU');
  expect(u.smfu.value).toBeCloseTo(1.5, 12);
  expect(u.smfu.above1).toMatch(/compute peak is too low/);
  expect(u.smfu.peakSamples).toBe(40);
  // below 1: no flag
  const ok = utilisation(peaks, { ...a, meanBytes: 3e7, tokensPerSecond: 100, bandwidthNow: bandwidthNow(40e9, 40e9) });
  expect('value' in ok.smbu && ok.smbu.above1).toBeFalsy();
  expect('value' in ok.smfu && ok.smfu.above1).toBeFalsy();
  // a projection: never divided by this machine's bandwidth
  const proj = utilisation(peaks, { ...a, bandwidthNow: bandwidthNow(40e9, 44e9), projected: true });
  expect('value' in proj.smbu && proj.smbu.peakBandwidth).toBe(5e10);
  expect(likelyCauseAbove1('S-MBU', { projected: true })).toMatch(/another device's datasheet/);
});

test('a predicted time on a CPU without a bf16 dot is bounded by its fp32 FMAs; S-MFU keeps the bf16 peak or none', () => {
  const avx2 = peaksFromProfile({ ...base, isa: 'avx2', peakFlops: { f32: fig(2e11), int8: fig(3.2e11) } }, NOW);
  expect(computePeakFor('bf16', avx2)).toEqual({ value: null, which: 'bf16' });
  expect(timeBoundPeakFor('bf16', avx2)).toEqual({ value: 2e11, which: 'f32', note: 'bf16 widened to fp32 FMAs: no bf16 dot here' });
  // Where calibrate measured a bf16 dot, that is the bound; other dtypes as computePeakFor.
  const avx512 = peaksFromProfile(base, NOW);
  expect(timeBoundPeakFor('bf16', avx512)).toEqual({ value: 1e12, which: 'bf16' });
  for (const d of ['f32', 'fp8', 'int8', 'int4', 'mxfp4']) expect(timeBoundPeakFor(d, avx2)).toEqual(computePeakFor(d, avx2));
  // Without an fp32 figure there is nothing to bound bf16 by; a datasheet's bf16 is its own.
  expect(timeBoundPeakFor('bf16', peaksFromProfile({ ...base, isa: 'avx2', peakFlops: {} }, NOW))).toEqual({ value: null, which: 'bf16' });
  // The avx512 set always has a bf16 dot: a profile without its figure is incomplete, not widening.
  expect(timeBoundPeakFor('bf16', peaksFromProfile({ ...base, peakFlops: { f32: fig(5e11) } }, NOW))).toEqual({ value: null, which: 'bf16' });
  expect(timeBoundPeakFor('bf16', peaksFromDatasheet(findDatasheet('h200')))).toEqual(computePeakFor('bf16', peaksFromDatasheet(findDatasheet('h200'))));
});
