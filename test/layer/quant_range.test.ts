// int8/int4 keep one fp16 scale per block of 32 weights, so they hold only weights whose block
// maximum the fp16 scale can express: outside that range the layer is refused at load with a
// RangeError naming the expert, the matrix row and the block, never built with garbage levels
// (scale 0: every weight zero; scale inf: non-finite outputs). f32/bf16 hold the same weights.
import { createMoeLayer, type DType } from '../../lib';
import { gaussian, makeWeights, relL2 } from '../helpers';

const named = (name: string) => expect.objectContaining({ name });
const cfg = { hidden: 72, intermediate: 40, experts: 4, topK: 2, scoring: 'softmax' as const, renormalize: true };
// |w|max of a block the format holds: fp16 scale in [2^-17, 65504] times 127 (int8) or the int4
// scale search's divisors 7.5..9.5 (native/core/weights/block_quant.h).
const RANGE: Record<'int8' | 'int4', [number, number]> = {
  int8: [127 * 2 ** -17, 127 * 65504],
  int4: [9.5 * 2 ** -17, 7.5 * 65504],
};
const BOUND: Record<string, number> = { f32: 7e-7, bf16: 9e-3, int8: 2e-2, int4: 1.5e-1 };

function scaledWeights(factor: number) {
  const w = makeWeights(cfg, 11);
  for (const m of [w.gate, w.up, w.down]) for (let i = 0; i < m.length; i++) m[i] *= factor;
  return w;
}

// Whether any non-zero 32-block of any expert row lies outside the range (what the loader checks).
function outOfRange(factor: number, dtype: 'int8' | 'int4'): boolean {
  const w = scaledWeights(factor);
  const [lo, hi] = RANGE[dtype];
  const rows: [Float32Array, number][] = [
    [w.gate, cfg.hidden],
    [w.up, cfg.hidden],
    [w.down, cfg.intermediate],
  ];
  for (const [m, K] of rows)
    for (let r = 0; r < m.length / K; r++)
      for (let k0 = 0; k0 < K; k0 += 32) {
        let a = 0;
        for (let k = k0; k < Math.min(K, k0 + 32); k++) a = Math.max(a, Math.abs(m[r * K + k]));
        if (a !== 0 && (a < lo || a > hi)) return true;
      }
  return false;
}

async function error(dtype: DType, factor: number): Promise<number> {
  const layer = await createMoeLayer({ ...cfg, dtype, threads: 2, weights: scaledWeights(factor) });
  try {
    const x = gaussian(9 * cfg.hidden, 77);
    const r = await layer.forward(x);
    const ref = await layer.reference(x);
    expect(r.output.every(Number.isFinite)).toBe(true);
    return relL2(r.output, ref.output);
  } finally {
    layer.close();
  }
}

describe.each([1e-7, 1e7])('expert weights scaled by %p', (factor) => {
  test.each(['f32', 'bf16'] as DType[])('%s stays accurate', async (dtype) => {
    expect(await error(dtype, factor)).toBeLessThan(BOUND[dtype]);
  });

  test.each(['int8', 'int4'] as const)('%s: refused at load naming the expert, row and block, or accurate', async (dtype) => {
    if (!outOfRange(factor, dtype)) {
      expect(await error(dtype, factor)).toBeLessThan(BOUND[dtype]);
      return;
    }
    const make = () => createMoeLayer({ ...cfg, dtype, threads: 2, weights: scaledWeights(factor) });
    await expect(make()).rejects.toEqual(named('RangeError'));
    const re = new RegExp(
      `${dtype} weights out of range at expert \\d+, (gate|up|down) row \\d+, block \\d+ \\(inputs from \\d+\\): ` +
        `max\\|w\\| = ([\\d.e+-]+), but ${dtype} with fp16 block scales holds max\\|w\\| in \\[([\\d.e+-]+), ([\\d.e+-]+)\\]`,
    );
    const msg = await make().then(
      () => '',
      (e: Error) => e.message,
    );
    expect(msg).toMatch(re);
    const [, , amax, lo, hi] = re.exec(msg)!.map(Number);
    expect(lo / RANGE[dtype][0]).toBeCloseTo(1, 2);
    expect(hi / RANGE[dtype][1]).toBeCloseTo(1, 2);
    expect(amax < lo || amax > hi).toBe(true);
  });
});

test('the scaled cases that fall outside the range are the ones the issue reported', () => {
  expect(outOfRange(1e-7, 'int8')).toBe(true);
  expect(outOfRange(1e-7, 'int4')).toBe(true);
  expect(outOfRange(1e7, 'int4')).toBe(true);
});

test('a block beyond the range in one lane is refused naming that lane; ordinary weights load', async () => {
  const w = makeWeights(cfg, 12);
  const H = cfg.hidden;
  // expert 2, down row 5 (down is [E, H, F]): its second block (inputs 32..39) scaled to 1e-9.
  for (let k = 32; k < cfg.intermediate; k++) w.down[(2 * H + 5) * cfg.intermediate + k] *= 1e-9 / 0.2;
  await expect(createMoeLayer({ ...cfg, dtype: 'int8', weights: w })).rejects.toThrow(
    /int8 weights out of range at expert 2, down row 5, block 1 \(inputs from 32\): max\|w\| = 7\.6e-10/,
  );
  for (const dtype of ['int8', 'int4'] as DType[]) expect(await error(dtype, 1)).toBeLessThan(BOUND[dtype]);
  // An all-zero block is exact (scale 0) and loads.
  const z = makeWeights(cfg, 13);
  for (let k = 0; k < 32; k++) z.gate[k] = 0;
  (await createMoeLayer({ ...cfg, dtype: 'int4', weights: z })).close();
});
