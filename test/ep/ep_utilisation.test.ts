// Per-rank S-MBU and S-MFU (lib/ep_utilisation.ts): the arithmetic on fixed counts and times,
// each expected figure worked out by hand in the comments.
import { meanWork, passWork, rankCeiling, rankUtilisation, type RankCeiling } from '../../lib/ep_utilisation';
import type { EpRankStats } from '../../lib/ep';

const shape = { hidden: 64, intermediate: 32, sharedIntermediate: 16 };

function stats(s: Partial<EpRankStats>): EpRankStats {
  return {
    rank: 0,
    ranks: 2,
    routeNs: 0,
    dispatchNs: 0,
    computeNs: 0,
    combineNs: 0,
    totalNs: 0,
    rowsSent: 0,
    rowsReceived: 0,
    dropped: 0,
    bytesSent: 0,
    bytesReceived: 0,
    sharedNs: 0,
    rowsComputed: 0,
    expertsComputed: 0,
    sharedRows: 0,
    expertBytes: 1000,
    sharedBytes: 500,
    rowBytes: 100,
    rankComputeNs: [0, 0],
    offload: null,
    ...s,
  };
}

// Pass A: 10 routed rows over 3 experts, 4 shared rows, 2 ms + 0.5 ms.
const A = stats({ computeNs: 2e6, sharedNs: 0.5e6, rowsComputed: 10, expertsComputed: 3, sharedRows: 4 });
// Pass B: 6 routed rows over 2 experts, 4 shared rows, 3 ms + 0.5 ms.
const B = stats({ computeNs: 3e6, sharedNs: 0.5e6, rowsComputed: 6, expertsComputed: 2, sharedRows: 4 });

const ceiling: RankCeiling = {
  threads: 1,
  bandwidthBefore: 1e6,
  bandwidthAfter: 2e6,
  peakFlops: { f32: 1e8, bf16: 2e8, int8: 4e8 },
  statistic: 'test',
};

describe('per-rank work of a pass', () => {
  test('bytes: experts × expert bytes + shared + (rows + shared rows) × row bytes; FLOPs: 6·H·F a routed row, 6·H·F_s a shared row', () => {
    const w = passWork([A], shape);
    // 3·1000 + 500 + 14·100 = 4900
    expect(w.bytes).toEqual({ router: 0, experts: 3000, shared: 500, attention: 0, activations: 1400, total: 4900 });
    // 10·6·64·32 + 4·6·64·16 = 122880 + 24576
    expect(w.flops).toBe(147456);
    expect(w.seconds).toBeCloseTo(2.5e-3, 15);
    expect(w).toMatchObject({ rows: 10, sharedRows: 4, experts: 3 });
  });

  test("a pass's layers add up", () => {
    const w = passWork([A, B], shape);
    expect(w.bytes.total).toBe(4900 + 3500);
    expect(w.flops).toBe(147456 + 98304);
    expect(w.seconds).toBeCloseTo(6e-3, 15);
  });

  test('the mean over passes, figure by figure', () => {
    const m = meanWork([passWork([A], shape), passWork([B], shape)]);
    expect(m.bytes.total).toBe(4200); // (4900 + 3500) / 2
    expect(m.bytes.experts).toBe(2500);
    expect(m.flops).toBe(122880); // (147456 + 98304) / 2
    expect(m.seconds).toBeCloseTo(3e-3, 15);
    expect(m.rows).toBe(8);
  });
});

describe('per-rank S-MBU and S-MFU', () => {
  const m = meanWork([passWork([A], shape), passWork([B], shape)]);

  test('f32: 4200 B / 3 ms / 2 MB/s (the higher of before and after) = 0.7; 122880 FLOP / 3 ms / 100 MFLOP/s = 0.4096', () => {
    const u = rankUtilisation(m, ceiling, 'f32');
    expect(u.smbu).toMatchObject({ bytesPerPass: 4200, peakBandwidth: 2e6, bandwidthNow: { before: 1e6, after: 2e6 } });
    expect('available' in u.smbu ? NaN : u.smbu.value).toBeCloseTo(0.7, 12);
    expect(u.smfu).toMatchObject({ flopsPerPass: 122880, peakFlops: 1e8, peakDtype: 'f32' });
    expect('available' in u.smfu ? NaN : u.smfu.value).toBeCloseTo(0.4096, 12);
    expect(u.smbu).not.toHaveProperty('above1');
  });

  test('int4 divides by the int8 peak (as the single-process run), bf16 by the bf16 one', () => {
    const i4 = rankUtilisation(m, ceiling, 'int4').smfu;
    expect(i4).toMatchObject({ peakDtype: 'int8', peakFlops: 4e8 });
    expect('available' in i4 ? NaN : i4.value).toBeCloseTo(0.1024, 12);
    expect(rankUtilisation(m, ceiling, 'bf16').smfu).toMatchObject({ peakDtype: 'bf16', peakFlops: 2e8 });
  });

  test('above 1: flagged with the likely cause', () => {
    const u = rankUtilisation(m, { ...ceiling, bandwidthBefore: 1e6, bandwidthAfter: 1e6 }, 'f32');
    expect('available' in u.smbu ? NaN : u.smbu.value).toBeCloseTo(1.4, 12);
    expect(u.smbu).toHaveProperty('above1', expect.stringMatching(/caches/));
  });

  test('no ceiling, no peak for the dtype, no rows: unavailable with the reason', () => {
    const none = { available: false as const, reason: 'GPU ranks: none' };
    expect(rankUtilisation(m, none, 'f32')).toEqual({ smbu: none, smfu: none });
    expect(rankUtilisation(m, { ...ceiling, peakFlops: { f32: 1e8, bf16: null, int8: null } }, 'bf16').smfu).toEqual({
      available: false,
      reason: "this rank's CPU has no bf16 compute loop",
    });
    const idle = passWork([stats({ computeNs: 1000 })], shape);
    expect(rankUtilisation(idle, ceiling, 'f32').smbu).toMatchObject({ available: false, reason: expect.stringMatching(/no rows/) });
  });

  test('rankCeiling: each peak the best window before or after, the bandwidths before and after', () => {
    const f = (v: number) => ({ value: v, unit: 'FLOP/s', repeats: 3, spread: 0, min: v, max: v, statistic: 'best of 3 windows' });
    const before = { threads: 2, readBandwidth: 5e9, peakFlops: { f32: f(1e11), int8: f(4e11) } };
    const after = { threads: 2, readBandwidth: 6e9, peakFlops: { f32: f(0.5e11), int8: f(4.5e11) } };
    expect(rankCeiling(before, after)).toMatchObject({
      threads: 2,
      bandwidthBefore: 5e9,
      bandwidthAfter: 6e9,
      peakFlops: { f32: 1e11, bf16: null, int8: 4.5e11 },
      statistic: expect.stringMatching(/best of 6 windows/),
    });
  });
});
