// Expert parallelism with offload on each rank (loopback ranks): every rank's share of the experts
// lives in its own weights file behind its own cache, and the output stays bitwise equal to the
// single-process all-resident layer, for the placements and every dtype.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, type MoeLayerOptions } from '../../lib/moe_layer';
import { simulateEp, type EpOptions } from '../../lib/ep';
import { bitwiseEqual, gaussian, makeWeights } from '../helpers';
import { loadsOf } from './expert_loads';

function options(o: { H: number; F: number; E: number; k: number; dtype?: MoeLayerOptions['dtype']; shared?: boolean; seed: number }): MoeLayerOptions {
  const c = { hidden: o.H, intermediate: o.F, experts: o.E, topK: o.k, sharedExperts: o.shared ? { intermediate: 24, gated: true } : undefined };
  return { ...c, dtype: o.dtype, threads: 1, poison: true, weights: makeWeights(c as never, o.seed) as never };
}

async function resident(opts: MoeLayerOptions, x: Float32Array) {
  const l = await createMoeLayer(opts);
  try {
    return { pass: await l.forward(x), expertBytes: l.info().expertBytes };
  } finally {
    l.close();
  }
}

describe('expert parallelism with offload on each rank (loopback ranks)', () => {
  const cases: Array<
    [string, { H: number; F: number; E: number; k: number; T: number; dtype: MoeLayerOptions['dtype']; shared?: boolean }, (l: number[]) => EpOptions]
  > = [
    ['contiguous, 2 ranks, f32, shared expert', { H: 64, F: 48, E: 8, k: 2, T: 31, dtype: 'f32', shared: true }, () => ({ ranks: 2 })],
    ['balanced, 3 ranks, bf16, odd E', { H: 64, F: 40, E: 9, k: 3, T: 27, dtype: 'bf16' }, (l) => ({ ranks: 3, placement: 'balanced', loads: l })],
    ['redundant 2, 2 ranks, int8', { H: 128, F: 64, E: 8, k: 2, T: 35, dtype: 'int8' }, (l) => ({ ranks: 2, redundant: 2, loads: l })],
    [
      'balanced + redundant 1, 2 ranks, int4',
      { H: 128, F: 64, E: 7, k: 2, T: 25, dtype: 'int4' },
      (l) => ({ ranks: 2, placement: 'balanced', redundant: 1, loads: l }),
    ],
  ];
  for (const [name, c, ep] of cases) {
    test(`${name}: a cache of half each rank's experts, bitwise equal to the resident single-process layer`, async () => {
      const opts = options({ ...c, seed: c.T + 3 });
      const x = gaussian(c.T * c.H, 500 + c.T);
      const ref = await resident(opts, x);
      const e = ep(loadsOf(ref.pass.expertIds, c.E));
      const r = await simulateEp({ ...opts, offload: { capacity: { fraction: 0.5 }, policy: 'lru' } }, e, x);
      expect(Array.from(r.expertIds)).toEqual(Array.from(ref.pass.expertIds));
      expect(bitwiseEqual(r.output, ref.pass.output)).toBe(true);
      let misses = 0;
      for (const s of r.ranks) {
        expect(s.offload).not.toBeNull();
        const o = s.offload!;
        // Every held expert that received rows is a hit or a miss of this rank's cache, once.
        expect(o.hits + o.misses).toBeLessThanOrEqual(s.experts!.length);
        expect(o.loads).toBeGreaterThanOrEqual(o.misses);
        expect(o.bytesRead).toBeGreaterThanOrEqual(o.misses * ref.expertBytes);
        misses += o.misses;
      }
      expect(misses).toBeGreaterThan(0); // half the experts resident: loads happened
    });
  }

  test('more ranks than experts: the rank holding none has no cache (offload null); still bitwise equal', async () => {
    const c = { H: 64, F: 32, E: 3, k: 1, T: 13 };
    const opts = options({ ...c, dtype: 'bf16', seed: 6 });
    const x = gaussian(c.T * c.H, 12);
    const ref = await resident(opts, x);
    const r = await simulateEp({ ...opts, offload: { capacity: { fraction: 0.5 } } }, { ranks: 4 }, x);
    expect(bitwiseEqual(r.output, ref.pass.output)).toBe(true);
    expect(Array.from(r.ranks[3].experts!)).toEqual([]);
    expect(r.ranks[3].offload).toBeNull();
    expect(r.ranks.slice(0, 3).every((s) => s.offload !== null)).toBe(true);
  });

  test('offload.path: one file per rank (".rank<r>-of-<P>"), reused by the next run; resident runs report offload null', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-ep-off-'));
    try {
      const c = { H: 64, F: 32, E: 6, k: 2, T: 17 };
      const opts = options({ ...c, dtype: 'int8', seed: 4 });
      const x = gaussian(c.T * c.H, 8);
      const ref = await resident(opts, x);
      const file = path.join(dir, 'experts.bin');
      const off = { ...opts, offload: { capacity: 1, path: file } };
      const a = await simulateEp(off, { ranks: 2 }, x);
      expect(fs.readdirSync(dir).sort()).toEqual(['experts.bin.rank0-of-2', 'experts.bin.rank1-of-2']);
      const b = await simulateEp(off, { ranks: 2 }, x); // the files validate and are used as they are
      expect(bitwiseEqual(a.output, ref.pass.output)).toBe(true);
      expect(bitwiseEqual(b.output, ref.pass.output)).toBe(true);
      // Another placement holds other experts: its share's file is refused, naming the file.
      await expect(simulateEp(off, { ranks: 2, placement: 'balanced', loads: [1, 9, 1, 9, 1, 9] }, x)).rejects.toMatchObject({
        message: expect.stringMatching(/experts\.bin\.rank[01]-of-2/),
      });
      const res = await simulateEp(opts, { ranks: 2 }, x);
      expect(res.ranks.map((s) => s.offload)).toEqual([null, null]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
