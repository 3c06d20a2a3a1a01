import {
  distinctExperts,
  expectedDistinctUniform,
  expertHistogram,
  flopsPerToken,
  layerBytes,
  percentile,
  smbu,
  smfu,
  summarize,
  tierUtilisation,
} from '../../lib/cap/metrics';
import { expertBytes, bytesPerWeight, findPreset, PRESETS } from '../../lib/cap/presets';
import { computePeakFor, findDatasheet, peaksFromDatasheet, DATASHEETS } from '../../lib/cap/hardware';

describe('presets', () => {
  test('every REFERENCE.md model plus tiny, with consistent shapes', () => {
    const names = PRESETS.map((p) => p.name);
    for (const n of [
      'tiny',
      'mixtral-8x7b',
      'mixtral-8x22b',
      'dbrx',
      'qwen1.5-moe-a2.7b',
      'qwen3-30b-a3b',
      'qwen3-235b-a22b',
      'deepseek-v2-lite',
      'deepseek-v3',
      'olmoe-1b-7b',
      'gpt-oss-120b',
    ])
      expect(names).toContain(n);
    for (const p of PRESETS) {
      expect(p.topK).toBeLessThanOrEqual(p.experts);
      expect(p.moeLayers).toBeLessThanOrEqual(p.layers);
      if (p.router.groups) expect(p.experts % p.router.groups.count).toBe(0);
    }
    const v3 = findPreset('deepseek-v3');
    expect(v3.router).toEqual({ scoring: 'sigmoid', renormalize: true, routedScalingFactor: 2.5, groups: { count: 8, keep: 4 }, selectionBias: true });
    expect(v3.moeLayers).toBe(58);
    expect(findPreset('qwen1.5-moe-a2.7b').shared).toEqual({ intermediate: 5632, count: 1, gated: true });
    expect(findPreset('deepseek-v2-lite').shared!.intermediate).toBe(2816);
    expect(() => findPreset('nope')).toThrow(/unknown preset 'nope'.*mixtral-8x7b/);
  });
});

describe('distinct experts', () => {
  test('scripted routing', () => {
    // tokens: {0,1} {1,2} {0,1} {5,7} → A = |{0,1,2,5,7}| = 5
    expect(distinctExperts(Int32Array.from([0, 1, 1, 2, 0, 1, 5, 7]))).toBe(5);
    expect(distinctExperts([3, -1])).toBe(1); // a dropped assignment (-1) is no expert
    expect(expertHistogram([0, 1, 1, 2, 0, 1, 5, 7], 8)).toEqual([2, 3, 1, 0, 0, 1, 0, 1]);
    expect(() => expertHistogram([8], 8)).toThrow(RangeError);
  });
  test('uniform expectation E·(1−(1−k/E)^T)', () => {
    expect(expectedDistinctUniform(8, 2, 1)).toBeCloseTo(2, 12); // A(1) = k
    expect(expectedDistinctUniform(8, 2, 0)).toBe(0);
    expect(expectedDistinctUniform(8, 2, 2)).toBeCloseTo(8 * (1 - 0.75 * 0.75), 12); // 3.5
    expect(expectedDistinctUniform(64, 8, 1e6)).toBeCloseTo(64, 9);
  });
});

describe('S-MBU', () => {
  test('Mixtral-8x7B bf16, A = 2 per layer, 32 layers', () => {
    const p = findPreset('mixtral-8x7b');
    const Se = expertBytes(p, bytesPerWeight('bf16'));
    expect(Se).toBe(3 * 4096 * 14336 * 2);
    let moe = 0;
    for (let l = 0; l < 32; l++) moe += layerBytes({ distinctExperts: 2, expertBytes: Se, routerBytes: 0 }).experts;
    expect(moe).toBe(32 * (2 * 3 * 4096 * 14336) * 2); // = 22,548,578,304 bytes
    expect(moe).toBe(22548578304);
    // Router bf16 (H·E·2) and a shared part add to the total.
    const lb = layerBytes({ distinctExperts: 2, expertBytes: Se, routerBytes: 4096 * 8 * 2, sharedBytes: 10, kvBytes: 5 });
    expect(lb.total).toBe(704643072 + 65536 + 10 + 5);
    // 22.55 GB in 10 ms on an H100 SXM (3.35 TB/s): 0.673...
    const bw = findDatasheet('h100-sxm').memoryBandwidth;
    expect(smbu(moe, 0.01, bw)).toBeCloseTo(22548578304 / 0.01 / 3.35e12, 12);
    expect(smbu(moe, 0.01, bw)).toBeCloseTo(0.6730919, 6);
    expect(() => smbu(1, 0, bw)).toThrow(RangeError);
    expect(() => layerBytes({ distinctExperts: -1, expertBytes: 1, routerBytes: 0 })).toThrow(/distinctExperts/);
  });
  test('offload tier utilisation', () => {
    expect(tierUtilisation(25e9, 2, 25e9)).toBeCloseTo(0.5, 12);
  });
});

describe('S-MFU', () => {
  test('counts k experts (paper formula), dense peaks', () => {
    const p = findPreset('mixtral-8x7b');
    const f = flopsPerToken({ hidden: p.hidden, experts: p.experts, topK: p.topK, intermediate: p.intermediate });
    expect(f).toBe(2 * 4096 * 8 + 2 * 2 * 3 * 4096 * 14336); // 704,708,608: k = 2 experts, not 1
    expect(f).toBe(704708608);
    const q = findPreset('qwen1.5-moe-a2.7b');
    expect(flopsPerToken({ hidden: q.hidden, experts: q.experts, topK: q.topK, intermediate: q.intermediate, sharedIntermediate: 5632 })).toBe(
      2 * 2048 * 60 + 2 * 4 * 3 * 2048 * 1408 + 2 * 3 * 2048 * 5632,
    );
    const peak = computePeakFor('bf16', peaksFromDatasheet(findDatasheet('h100-sxm')));
    expect(peak).toEqual({ value: 989.4e12, which: 'bf16' });
    // 1000 tokens/s through 32 layers
    expect(smfu(1000, 32 * f, peak.value!)).toBeCloseTo((1000 * 32 * 704708608) / 989.4e12, 15);
    expect(smfu(1000, 32 * f, peak.value!)).toBeCloseTo(0.0227923, 6);
  });
  test('datasheet table', () => {
    expect(DATASHEETS.map((d) => d.name).sort()).toEqual(['a100-pcie', 'a100-sxm', 'a6000', 'h100-pcie', 'h100-sxm', 'h200', 'l40s', 'rtx-4090']);
    expect(findDatasheet('H200').memoryBandwidth).toBe(4.8e12);
    expect(findDatasheet('rtx-4090').tdpW).toBe(450);
    expect(() => findDatasheet('tpu')).toThrow(/unknown hardware 'tpu'/);
  });
});

describe('percentiles (linear interpolation, numpy default)', () => {
  test('hand values', () => {
    expect(percentile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 0.9)).toBeCloseTo(3.7, 12);
    expect(percentile([1, 2, 3, 4], 0.99)).toBeCloseTo(3.97, 12);
    expect(percentile([7], 0.99)).toBe(7);
    const s = summarize([1, 2, 3, 4, 5]);
    expect(s).toMatchObject({ n: 5, median: 3, p50: 3, min: 1, max: 5, mean: 3 });
    expect(s.p90).toBeCloseTo(4.6, 12);
    expect(() => percentile([], 0.5)).toThrow(RangeError);
    expect(() => summarize([])).toThrow(RangeError);
  });

  // An engine run's decode steps (moecap analyze) pass 10^5 easily: a spread into Math.min/max
  // overflowed the stack there.
  test('a summary of 300 000 values, in any order, against a plain sort', () => {
    const n = 300_000;
    const xs = Array.from({ length: n }, (_, i) => ((i * 7919) % n) / 1000 + 0.5);
    const s = summarize(xs);
    const sorted = [...xs].sort((a, b) => a - b);
    expect(s.n).toBe(n);
    expect(s.min).toBe(sorted[0]);
    expect(s.max).toBe(sorted[n - 1]);
    const h = (n - 1) * 0.99;
    expect(s.p99).toBeCloseTo(sorted[Math.floor(h)] + (h - Math.floor(h)) * (sorted[Math.floor(h) + 1] - sorted[Math.floor(h)]), 9);
    expect(s.median).toBeCloseTo((sorted[n / 2 - 1] + sorted[n / 2]) / 2, 9);
    expect(s.mean).toBeCloseTo(sorted.reduce((a, b) => a + b, 0) / n, 9);
  });
});
