// The mxfp4 and fp8 weight dtypes on every ISA this CPU runs. The master weights are snapped onto
// each format's grid first (mxfp4: E2M1 values × 2^e per 32 inputs with a ±6 in every block, so the
// packer's OCP scale rule picks that 2^e; fp8: E4M3 values × s per 128 inputs with a ±448 in every
// block, so the packer's max/448 scale is s): packing is then exact (conversionError says 0), the
// stored bytes dequantise to the master weights, and the fp64 reference of the master weights is
// the reference of the stored bytes. What remains is the kernels' own arithmetic: fp32 accumulation
// (fp8) and the int8 activation rows (mxfp4, as for int8/int4). Odd sizes (partial panels, partial
// 32/128 blocks, an odd number of mxfp4 blocks), T = 1 (decode tiles) and T > 1 (prefill tiles),
// outputs and workspaces poisoned, a token alone equal to it in the batch bit for bit.
import { createMoeLayer, systemInfo, type Isa } from '../../lib';
import { loadAddon } from '../../lib/native/loader';
import { bitwiseEqual, forwardAgainstReference, gaussian, makeWeights, relL2 } from '../helpers';
import type { RefWeights } from '../reference/moe_reference';

const ISAS = systemInfo().supportedIsas as Isa[];
type ErrorAddon = { conversionError(v: Float32Array, rows: number, cols: number, dtype: string): { maxAbs: number; sumSqErr: number; sumSqRef: number } };
const addon = loadAddon() as unknown as ErrorAddon;
// The grid snapping is shared with the plain-JS arm64 suite (test/arm64/correctness.js).
const { snapWeights } = require('../arm64/grid_snap.js') as {
  snapWeights(w: RefWeights, H: number, F: number, dtype: 'mxfp4' | 'fp8'): RefWeights;
};

// Relative L2 bounds vs the fp64 reference, pooled over the tokens of one shape. With exact weights:
// fp8 is fp32 accumulation only (f32's own bound in kernels_dtypes.test.ts is 1e-5 for 4100-long
// sums); mxfp4 carries the int8 activation rows (int8's bound, 2e-2, includes int8 weights too).
const BOUND = { mxfp4: 2e-2, fp8: 1e-5 };
const TOKENS = [1, 4, 19];
const ROUTER = { scoring: 'softmax' as const, renormalize: true };
const SHAPES = [
  { hidden: 72, intermediate: 40, experts: 5, topK: 2 },
  { hidden: 161, intermediate: 99, experts: 4, topK: 2 },
  { hidden: 1100, intermediate: 70, experts: 2, topK: 1 },
  // K = 129 and 257: a last fp8 block of one input (the AVX-512 tile's lone-input step).
  { hidden: 129, intermediate: 257, experts: 3, topK: 2 },
];

describe.each(['mxfp4', 'fp8'] as const)('%s', (dtype) => {
  test.each(SHAPES)('exact packing of on-grid weights (H=$hidden F=$intermediate)', (shape) => {
    const w = snapWeights(makeWeights({ ...shape, ...ROUTER }, 7 + shape.hidden), shape.hidden, shape.intermediate, dtype);
    for (const [m, K] of [
      [w.gate, shape.hidden],
      [w.down, shape.intermediate],
    ] as const) {
      const e = addon.conversionError(m, m.length / K, K, dtype);
      expect(e.sumSqRef).toBeGreaterThan(0);
      expect(e.maxAbs).toBe(0);
    }
    // Off-grid weights are not exact (so the zero above is not vacuous), but close.
    const g = makeWeights({ ...shape, ...ROUTER }, 7 + shape.hidden).gate;
    const e = addon.conversionError(g, g.length / shape.hidden, shape.hidden, dtype);
    expect(e.maxAbs).toBeGreaterThan(0);
    expect(Math.sqrt(e.sumSqErr / e.sumSqRef)).toBeLessThan(dtype === 'fp8' ? 4e-2 : 1.5e-1);
  });

  describe.each(ISAS)('%s kernels', (isa) => {
    test.each(SHAPES)('H=$hidden F=$intermediate E=$experts k=$topK vs the fp64 reference of the stored values', async (shape) => {
      const cfg = { ...shape, ...ROUTER };
      const weights = snapWeights(makeWeights(cfg, 7 + shape.hidden), shape.hidden, shape.intermediate, dtype);
      const layer = await createMoeLayer({ ...cfg, dtype, isa, threads: 2, poison: true, weights });
      expect(layer.info().isa).toBe(isa);
      expect(layer.info().dtype).toBe(dtype);
      const err = await forwardAgainstReference(layer, shape.hidden, TOKENS, (T) => 300 + T * 5 + shape.hidden);
      expect(err).toBeLessThan(BOUND[dtype]);
      expect(err).toBeGreaterThan(0);
      layer.close();
    });

    // The family epilogues (gpt-oss: router bias, expert biases, clamped SwiGLU; llama4: the
    // routing score on the input) on the same exact weights, against the layer's fp64 reference.
    test.each([
      [
        'gpt-oss',
        {
          scoring: 'softmax' as const,
          renormalize: true,
          routerBias: gaussian(5, 92, 0.5),
          expertBiases: { gate: gaussian(5 * 40, 93, 0.3), up: gaussian(5 * 40, 94, 0.3), down: gaussian(5 * 72, 95, 0.3) },
          clampedSwiglu: { limit: 0.5, alpha: 1.702 },
        },
      ],
      ['llama4', { scoring: 'sigmoid' as const, renormalize: false, scoreOnInput: true }],
    ])('%s epilogue', async (_name, v) => {
      const shape = { hidden: 72, intermediate: 40, experts: 5, topK: 2 };
      const weights = snapWeights(makeWeights({ ...shape, ...ROUTER }, 91), shape.hidden, shape.intermediate, dtype);
      const layer = await createMoeLayer({ ...shape, ...v, dtype, isa, threads: 2, poison: true, weights });
      const x = gaussian(9 * shape.hidden, 96);
      const r = await layer.forward(x);
      const err = relL2(r.output, (await layer.reference(x)).output);
      expect(err).toBeLessThan(2 * BOUND[dtype]);
      expect(err).toBeGreaterThan(0);
      const one = await layer.forward(x.slice(4 * shape.hidden, 5 * shape.hidden));
      expect(bitwiseEqual(one.output, r.output.subarray(4 * shape.hidden, 5 * shape.hidden))).toBe(true);
      layer.close();
    });
  });
});

// fp8 stored codes the snapped Gaussian weights above almost never hold: every E4M3 code, the 14
// subnormals (m·2^-9) among them, in every 128-input block of gate, up and down, with the ±448 that
// fixes the block's scale at position 0. For gate/up the input at those positions is 2^-20, so the
// outputs are made of the other codes and a subnormal decoded wrong (as 0, or as a normal) is far
// past the bound. Then the same weights scaled by 2^-100 against inputs of ~2^66: the AVX2 kernel's
// fast decode scales activations by 2^64, so such a job has to take its exact fallback.
describe('fp8 every E4M3 code', () => {
  const shape = { hidden: 300, intermediate: 136, experts: 2, topK: 1 };
  const e4m3 = (c: number) => (c >> 3 === 0 ? (c & 7) * 2 ** -9 : (1 + (c & 7) / 8) * 2 ** ((c >> 3) - 7));
  // Rows of length K: position 0 of each block ±448·s, the others codes in turn with a sign pattern:
  // 0..126, or (so that they make those rows' sums) 0..7, zero and the subnormals, or 0..23, those
  // and the smallest normals.
  const codeRows = (rows: number, K: number, s: number, seed: number) => {
    const m = new Float32Array(rows * K);
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < K; k++) {
        const sign = (r * 31 + k * 7 + seed) % 3 === 0 ? -1 : 1;
        m[r * K + k] = k % 128 === 0 ? sign * 448 * s : sign * e4m3((r * 13 + k + seed) % [127, 8, 24][r % 3]) * s;
      }
    return m;
  };
  const weightsAt = (s: number): RefWeights => {
    const { hidden: H, intermediate: F, experts: E } = shape;
    const w = makeWeights({ ...shape, ...ROUTER }, 501);
    return { ...w, gate: codeRows(E * F, H, s, 1), up: codeRows(E * F, H, s, 2), down: codeRows(E * H, F, 2 ** -8, 3) };
  };
  const input = (T: number, scale: number) => {
    const x = gaussian(T * shape.hidden, 502 + T);
    for (let i = 0; i < x.length; i++) x[i] = (i % shape.hidden) % 128 === 0 ? 2 ** -20 : x[i] * scale;
    return x;
  };

  test('the codes pack exactly', () => {
    for (const s of [2 ** -8, 2 ** -100]) {
      const w = weightsAt(s);
      expect(w.gate.filter((v) => v !== 0 && Math.abs(v) < 2 ** -6 * s).length).toBeGreaterThan(100);
      expect(addon.conversionError(w.gate, w.gate.length / shape.hidden, shape.hidden, 'fp8').maxAbs).toBe(0);
      expect(addon.conversionError(w.down, w.down.length / shape.intermediate, shape.intermediate, 'fp8').maxAbs).toBe(0);
    }
  });

  test.each(ISAS)('%s kernels against the fp64 reference', async (isa) => {
    for (const [s, scale] of [
      [2 ** -8, 1],
      [2 ** -100, 2 ** 66],
    ]) {
      const layer = await createMoeLayer({ ...shape, ...ROUTER, dtype: 'fp8', isa, threads: 2, poison: true, weights: weightsAt(s) });
      for (const T of [1, 5]) {
        const x = input(T, scale);
        const r = await layer.forward(x);
        const ref = await layer.reference(x);
        expect(r.output.every(Number.isFinite)).toBe(true);
        const err = relL2(r.output, ref.output);
        expect(err).toBeLessThan(BOUND.fp8);
        expect(err).toBeGreaterThan(0);
      }
      // A row of zeros (no max|x| to scale by) between two others: zeros out, the others as alone.
      const x = input(3, scale);
      x.fill(0, shape.hidden, 2 * shape.hidden);
      const r = await layer.forward(x);
      expect(r.output.subarray(shape.hidden, 2 * shape.hidden).every((v) => v === 0)).toBe(true);
      const last = await layer.forward(x.slice(2 * shape.hidden));
      expect(bitwiseEqual(last.output, r.output.subarray(2 * shape.hidden))).toBe(true);
      layer.close();
    }
  });
});
