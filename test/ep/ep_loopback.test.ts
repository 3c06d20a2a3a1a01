// Expert parallelism over in-process ranks: bitwise equal to the single-process layer for every
// placement, odd E, ranks whose experts get no rows, and the dtypes; bad options refused.
import { createMoeLayer, type MoeLayerOptions } from '../../lib/moe_layer';
import { imbalance, simulateEp, type EpOptions } from '../../lib/ep';
import { bitwiseEqual, gaussian, makeWeights } from '../helpers';
import { loadsOf } from './expert_loads';

function options(o: { H: number; F: number; E: number; k: number; dtype?: MoeLayerOptions['dtype']; shared?: boolean; seed: number }): MoeLayerOptions {
  const c = { hidden: o.H, intermediate: o.F, experts: o.E, topK: o.k, sharedExperts: o.shared ? { intermediate: 24, gated: true } : undefined };
  return { ...c, dtype: o.dtype, threads: 1, poison: true, weights: makeWeights(c as never, o.seed) as never };
}

async function single(opts: MoeLayerOptions, x: Float32Array) {
  const l = await createMoeLayer(opts);
  try {
    return await l.forward(x);
  } finally {
    l.close();
  }
}

describe('expert parallelism (loopback ranks)', () => {
  const cases: Array<
    [string, { H: number; F: number; E: number; k: number; T: number; dtype?: MoeLayerOptions['dtype']; shared?: boolean }, (loads: number[]) => EpOptions]
  > = [
    ['contiguous, 2 ranks', { H: 64, F: 48, E: 8, k: 2, T: 37 }, () => ({ ranks: 2 })],
    ['contiguous, 3 ranks, odd E, shared expert', { H: 96, F: 40, E: 7, k: 3, T: 29, shared: true }, () => ({ ranks: 3 })],
    ['balanced from the trace, 2 ranks', { H: 64, F: 48, E: 9, k: 2, T: 41 }, (l) => ({ ranks: 2, placement: 'balanced', loads: l })],
    ['redundant 2 hottest, 2 ranks', { H: 64, F: 48, E: 8, k: 2, T: 33 }, (l) => ({ ranks: 2, redundant: 2, loads: l })],
    [
      'balanced + redundant 3, 4 ranks, int8',
      { H: 128, F: 64, E: 11, k: 2, T: 50, dtype: 'int8' },
      (l) => ({ ranks: 4, placement: 'balanced', redundant: 3, loads: l }),
    ],
    ['contiguous, 2 ranks, bf16', { H: 64, F: 48, E: 6, k: 2, T: 19, dtype: 'bf16' }, () => ({ ranks: 2 })],
    ['contiguous, 2 ranks, int4', { H: 128, F: 64, E: 6, k: 2, T: 21, dtype: 'int4' }, () => ({ ranks: 2 })],
    ['more ranks than tokens', { H: 64, F: 32, E: 8, k: 2, T: 3 }, () => ({ ranks: 5 })],
  ];
  for (const [name, c, ep] of cases) {
    test(`${name}: output bitwise equal to the single-process layer`, async () => {
      const opts = options({ ...c, seed: c.T });
      const x = gaussian(c.T * c.H, 1000 + c.T);
      const ref = await single(opts, x);
      const r = await simulateEp(opts, ep(loadsOf(ref.expertIds, c.E)), x);
      expect(Array.from(r.expertIds)).toEqual(Array.from(ref.expertIds));
      expect(bitwiseEqual(r.output, ref.output)).toBe(true);
      // Every expert held somewhere; every routed row computed exactly once.
      const held = new Set<number>();
      for (const s of r.ranks) for (const e of s.experts!) held.add(e);
      expect(held.size).toBe(c.E);
      const sent = r.ranks.reduce((a, s) => a + s.rowsSent, 0),
        received = r.ranks.reduce((a, s) => a + s.rowsReceived, 0);
      expect(sent).toBe(received);
      for (const s of r.ranks) {
        expect(s.rankComputeNs).toHaveLength(r.ranks.length);
        expect(s.dispatchNs).toBeGreaterThan(0);
        expect(s.bytesSent).toBeGreaterThanOrEqual(0);
      }
      expect(imbalance(r.ranks[0].rankComputeNs)).toBeGreaterThanOrEqual(1);
    });
  }

  test('a rank whose experts get no rows: still bitwise equal, nothing computed there', async () => {
    const c = { H: 64, F: 32, E: 8, k: 1, T: 24 };
    const opts = options({ ...c, seed: 5 });
    // A router that only ever picks experts 0..3 (x > 0, rows 4..7 all -50) (rank 0's under contiguous placement over 2 ranks).
    const w = opts.weights as { router: Float32Array };
    for (let e = 4; e < 8; e++) for (let h = 0; h < c.H; h++) w.router[e * c.H + h] = -50;
    const x = gaussian(c.T * c.H, 77).map(Math.abs);
    const ref = await single(opts, x);
    expect(Math.max(...ref.expertIds)).toBeLessThan(4);
    const r = await simulateEp(opts, { ranks: 2 }, x);
    expect(bitwiseEqual(r.output, ref.output)).toBe(true);
    expect(Array.from(r.ranks[1].experts!)).toEqual([4, 5, 6, 7]);
    // Rank 1's tokens all go to rank 0; rank 1 receives and computes nothing.
    expect(r.ranks[1].rowsSent).toBe(ref.expertIds.length / 2);
    expect(r.ranks[0].rowsReceived).toBe(ref.expertIds.length / 2);
    expect(r.ranks[0].rowsSent).toBe(0);
    expect(r.ranks[1].rowsReceived).toBe(0);
  });

  test('bad ep options are refused with a message naming the option', async () => {
    const opts = options({ H: 32, F: 16, E: 4, k: 2, seed: 3 });
    const x = gaussian(4 * 32, 9);
    const bad: Array<[unknown, RegExp]> = [
      [{ ranks: 0 }, /ep.ranks must be an integer >= 1/],
      [{ ranks: 1.5 }, /ep.ranks must be an integer/],
      [{ ranks: 2, placement: 'round-robin' }, /ep.placement must be 'contiguous' or 'balanced'/],
      [{ ranks: 2, placement: 'balanced' }, /needs per-expert loads/],
      [{ ranks: 2, redundant: 1 }, /needs per-expert loads/],
      [{ ranks: 2, redundant: 5, loads: [1, 2, 3, 4] }, /ep.redundant must be an integer in \[0, 4\]/],
      [{ ranks: 2, placement: 'balanced', loads: [1, 2] }, /one load per expert \(4\)/],
      [{ ranks: 2, hops: 3 }, /ep.hops is not an option/],
      ['2', /ep must be an object/],
    ];
    for (const [ep, msg] of bad) {
      await expect(simulateEp(opts, ep as EpOptions, x)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', message: expect.stringMatching(msg) });
    }
  });
});

describe('expert parallelism with a capacity factor (loopback ranks)', () => {
  // Capacity C = ceil(cf·T·k/E) of the whole batch; an expert keeps its first C assignments in token
  // order across the ranks' shares, exactly as the single-process layer drops them.
  const cases: Array<[string, { H: number; F: number; E: number; k: number; T: number; cf: number; shared?: boolean }, (loads: number[]) => EpOptions]> = [
    ['cf 0.5, 2 ranks', { H: 64, F: 48, E: 8, k: 2, T: 37, cf: 0.5 }, () => ({ ranks: 2 })],
    ['cf 1, 3 ranks, odd E, shared expert', { H: 96, F: 40, E: 7, k: 3, T: 29, cf: 1, shared: true }, () => ({ ranks: 3 })],
    [
      'cf 0.75, balanced + redundant 2, 4 ranks',
      { H: 64, F: 48, E: 9, k: 2, T: 41, cf: 0.75 },
      (l) => ({ ranks: 4, placement: 'balanced', redundant: 2, loads: l }),
    ],
    ['cf 0.3, more ranks than tokens', { H: 64, F: 32, E: 8, k: 2, T: 3, cf: 0.3 }, () => ({ ranks: 5 })],
  ];
  for (const [name, c, ep] of cases) {
    test(`${name}: output bitwise equal to the single-process layer, the same assignments dropped`, async () => {
      const opts = { ...options({ ...c, seed: c.T + 7 }), capacityFactor: c.cf };
      const x = gaussian(c.T * c.H, 2000 + c.T);
      const ref = await single(opts, x);
      const unlimited = await single({ ...opts, capacityFactor: 0 }, x);
      expect(ref.stats.dropped).toBeGreaterThan(0);
      expect(bitwiseEqual(ref.output, unlimited.output)).toBe(false); // the drops change the output
      const r = await simulateEp(opts, ep(loadsOf(ref.expertIds, c.E)), x);
      expect(Array.from(r.expertIds)).toEqual(Array.from(ref.expertIds));
      expect(bitwiseEqual(r.output, ref.output)).toBe(true);
      const sent = r.ranks.reduce((a, s) => a + s.rowsSent, 0),
        received = r.ranks.reduce((a, s) => a + s.rowsReceived, 0);
      expect(sent).toBe(received);
    });
  }
});
