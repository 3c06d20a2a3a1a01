// The AVX2 kernels (bf16 widened to fp32 with FMA; int8/int4/mxfp4 with vpmaddubsw + vpmaddwd) on
// every weight dtype (mxfp4 and fp8 against the stored values: kernels_mx_fp8.test.ts), at sizes
// that are not multiples of 32 (partial panels, partial quantisation blocks, odd K for the bf16
// k-pairs) and one with K above the bf16 kernel's 512-value activation chunk:
//   - against the fp64 reference from the fp32 master weights, relative L2 pooled over the tokens
//     of T = 1, 3, 7, 33 (decode, a 2-row tile plus its 1-row tail, many tiles);
//   - output and workspaces poisoned with NaN before each pass (an unwritten element shows);
//   - each token alone equals the same token inside the batch, bitwise;
//   - with one expert (routing weight exactly 1, so the fp32 router's rounding cannot reach the
//     output) the bf16, int8, int4 and mxfp4 outputs equal the portable kernels' bit for bit: the AVX2
//     kernels compute the same integer block dots and round the same fp32 operations in the same
//     order (a bf16 × bf16 product is exact, so FMA rounds as the portable mul + add does).
// fp8's two decodes (fp32 bits, or fp16 bits and vcvtph2ps; the addon runs the one this CPU runs
// faster) are checked both, whichever this CPU picks, by test/native/avx2_fp8_test.cc against the
// addon's own AVX2 object. The decode tiles' extra prefetches (where prefetcht1 skips L1) change no
// arithmetic; which CPUs take them is checked against /proc/cpuinfo. Skipped where the CPU has no
// AVX2/FMA/F16C.
import * as fs from 'fs';
import * as path from 'path';
import { createMoeLayer, systemInfo, type DType } from '../../lib';
import { bitwiseEqual, forwardAgainstReference, gaussian, makeWeights, relL2 } from '../helpers';
import { haveGxx, ROOT, runNativeTest } from '../native_test';
import type { RefWeights } from '../reference/moe_reference';

const { snapWeights } = require('../arm64/grid_snap.js') as {
  snapWeights(w: RefWeights, H: number, F: number, dtype: 'mxfp4' | 'fp8'): RefWeights;
};

const HAS_AVX2 = (systemInfo().supportedIsas as string[]).includes('avx2');
const DTYPES: DType[] = ['f32', 'bf16', 'int8', 'int4'];
const TOKENS = [1, 3, 7, 33];
// The bounds the kernels issue sets per dtype (relative L2 vs the fp64 reference).
const BOUND: Record<string, number> = { f32: 1e-5, bf16: 1e-2, int8: 2e-2, int4: 1.5e-1 };

const SHAPES = [
  { hidden: 67, intermediate: 45, experts: 5, topK: 2 },
  { hidden: 555, intermediate: 83, experts: 4, topK: 2 },
];

const d = HAS_AVX2 ? describe : describe.skip;

d('avx2 kernels', () => {
  describe.each(DTYPES)('%s weights', (dtype) => {
    test.each(SHAPES)('H=$hidden F=$intermediate E=$experts k=$topK vs the fp64 reference; alone == in batch', async (shape) => {
      const cfg = { ...shape, scoring: 'softmax' as const, renormalize: true };
      const layer = await createMoeLayer({ ...cfg, dtype, isa: 'avx2', threads: 2, poison: true, weights: makeWeights(cfg, 31 + shape.hidden) });
      expect(layer.info().isa).toBe('avx2');
      expect(layer.info().dtype).toBe(dtype);
      const err = await forwardAgainstReference(layer, shape.hidden, TOKENS, (T) => 2000 + 13 * T + shape.hidden);
      expect(err).toBeLessThan(BOUND[dtype]);
      expect(err).toBeGreaterThan(0);
      layer.close();
    });
  });

  describe.each(['bf16', 'int8', 'int4', 'mxfp4'] as DType[])('%s weights, one expert', (dtype) => {
    test.each([
      { hidden: 67, intermediate: 45 },
      { hidden: 555, intermediate: 83 },
    ])('H=$hidden F=$intermediate: bitwise equal to the portable kernels', async (shape) => {
      const cfg = { ...shape, experts: 1, topK: 1, scoring: 'softmax' as const, renormalize: true };
      const weights = makeWeights(cfg, 71 + shape.hidden);
      const avx2 = await createMoeLayer({ ...cfg, dtype, isa: 'avx2', threads: 2, poison: true, weights });
      const generic = await createMoeLayer({ ...cfg, dtype, isa: 'generic', threads: 2, poison: true, weights });
      expect(avx2.info().isa).toBe('avx2');
      expect(generic.info().isa).toBe('generic');
      for (const T of TOKENS) {
        const x = gaussian(T * shape.hidden, 3000 + T);
        const a = await avx2.forward(x);
        const g = await generic.forward(x);
        expect(Array.from(a.expertWeights)).toEqual(new Array(T).fill(1));
        expect(a.output.every(Number.isFinite)).toBe(true);
        expect(bitwiseEqual(a.output, g.output)).toBe(true);
        // Not vacuous: the quantised output is not the fp64 reference's.
        const ref = await avx2.reference(x);
        expect(relL2(a.output, ref.output)).toBeGreaterThan(0);
      }
      avx2.close();
      generic.close();
    });
  });

  // One expert, one thread, T tokens: each token alone == in the batch bit for bit, the batch ==
  // the portable kernels where those are exact, and within the dtype's bound of the fp64 reference
  // (mxfp4 and fp8 on their grids, as in kernels_mx_fp8.test.ts, so the bound is the kernels' own).
  async function checkTiles(dtype: DType, shape: { hidden: number; intermediate: number }, T: number, seed: number, xSeed: number) {
    const cfg = { ...shape, experts: 1, topK: 1, scoring: 'softmax' as const, renormalize: true };
    const master = makeWeights(cfg, seed + shape.hidden);
    const weights = dtype === 'mxfp4' || dtype === 'fp8' ? snapWeights(master, shape.hidden, shape.intermediate, dtype) : master;
    const avx2 = await createMoeLayer({ ...cfg, dtype, isa: 'avx2', threads: 1, poison: true, weights });
    const x = gaussian(T * shape.hidden, xSeed + shape.hidden);
    const batch = (await avx2.forward(x)).output;
    expect(batch.every(Number.isFinite)).toBe(true);
    for (let t = 0; t < T; ++t) {
      const alone = (await avx2.forward(x.subarray(t * shape.hidden, (t + 1) * shape.hidden))).output;
      expect(bitwiseEqual(alone, batch.subarray(t * shape.hidden, (t + 1) * shape.hidden))).toBe(true);
    }
    if (['bf16', 'int8', 'int4', 'mxfp4'].includes(dtype)) {
      const generic = await createMoeLayer({ ...cfg, dtype, isa: 'generic', threads: 1, poison: true, weights });
      expect(bitwiseEqual(batch, (await generic.forward(x)).output)).toBe(true);
      generic.close();
    }
    const err = relL2(batch, (await avx2.reference(x)).output);
    expect(err).toBeLessThan(dtype === 'mxfp4' ? 2e-2 : dtype === 'fp8' ? 1e-5 : BOUND[dtype]);
    expect(err).toBeGreaterThan(0);
    avx2.close();
  }

  // One row takes 2 or 3 panels at once (strided, each a weight stream of its own) and the panels
  // its task leaves over one at a time; with one thread the tasks are 8 panels of the 129 (down:
  // H = 4100; gate/up: 2F = 4100), so both shapes go through both paths.
  describe.each(['f32', 'bf16', 'int8', 'int4', 'mxfp4', 'fp8'] as DType[])('%s weights, decode tiles over many panels', (dtype) => {
    test.each([
      { hidden: 4100, intermediate: 45 },
      { hidden: 67, intermediate: 2050 },
    ])('H=$hidden F=$intermediate, one thread: a token alone == in a batch of 3 (and == the portable kernels where those are exact)', (shape) =>
      checkTiles(dtype, shape, 3, 17, 500),
    );
  });

  // Prefill in K-blocks (run_tiles, linear_avx2.h): K = 2100 is no multiple of any dtype's K-block
  // (f32 256 inputs, bf16 512, fp8 1024, int8 1024, int4/mxfp4 2048) and spans two or more of each;
  // 101 rows are three row chunks (48, 48, 5), each ending in tiles smaller than the 2- or 3-row one.
  describe.each(['f32', 'bf16', 'int8', 'int4', 'mxfp4', 'fp8'] as DType[])('%s weights, prefill K-blocks', (dtype) => {
    test('H=2100 F=300, T=101, one thread: each token alone == in the batch (and == the portable kernels where those are exact)', () =>
      checkTiles(dtype, { hidden: 2100, intermediate: 300 }, 101, 23, 700));
  });

  // The vendor and AVX-512F from cpuid, as Linux reports them: Intel, or AMD with AVX-512F (Zen 4
  // on), fetch far ahead in the AVX2 decode tiles; other x86 CPUs (AMD before Zen 4, Hygon, …) not.
  (fs.existsSync('/proc/cpuinfo') ? test : test.skip)('prefetchT1SkipsL1 follows the vendor and AVX-512F in /proc/cpuinfo', () => {
    const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(cpu)?.[1];
    const avx512f = /^flags\s*:.*\bavx512f\b/m.test(cpu);
    expect(vendor).toBeDefined();
    const expected = vendor === 'GenuineIntel' || (vendor === 'AuthenticAMD' && avx512f);
    expect(systemInfo().prefetchT1SkipsL1).toBe(expected);
  });

  // Both fp8 decodes against the fp64 reference and each other (test/native/avx2_fp8_test.cc),
  // linked against the object the addon was built from.
  const fp8Object = path.join('build', 'Release', 'obj.target', 'moecap_isa_avx2', 'native', 'core', 'kernels', 'avx2', 'linear_avx2_fp8.o');
  (haveGxx && fs.existsSync(path.join(ROOT, fp8Object)) ? test : test.skip)(
    'fp8: both decodes (fp32 bits, fp16 bits) against the fp64 reference and bitwise each other (test/native/avx2_fp8_test.cc)',
    () => {
      const out = runNativeTest('avx2_fp8_test', ['test/native/avx2_fp8_test.cc', fp8Object, 'native/core/kernels/cpu_features.cc']);
      expect(out).toContain('ok   both decodes against the fp64 reference and each other: 30 cases');
      expect(out).toMatch(/all \d+ checks passed/);
      expect(Number(/all (\d+) checks passed/.exec(out)?.[1])).toBeGreaterThan(30000);
    },
    60_000,
  );
});
