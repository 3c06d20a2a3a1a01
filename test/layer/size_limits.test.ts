// Shapes whose byte counts pass 2^31 (or 2^64): sizes are computed in checked 64-bit arithmetic
// (native/core/runtime/checked_size.h), so the layer is refused with a RangeError that says what
// does not fit, never sized from a wrapped int (undefined behaviour, caught by scripts/sanitize.sh).
import { createMoeLayer, type DType } from '../../lib';

const named = (name: string) => expect.objectContaining({ name });
const BIG = 2 ** 31 - 1;

describe.each(['f32', 'int8', 'int4'] as DType[])('%s', (dtype) => {
  test.each([
    ['hidden', { hidden: BIG, intermediate: 8 }],
    ['intermediate', { hidden: 16, intermediate: BIG }],
    ['intermediate just below the padding limit', { hidden: 16, intermediate: BIG - 15 }],
    ['both', { hidden: BIG, intermediate: BIG }],
  ])('%s near 2^31 → RangeError about size or memory', async (_what, shape) => {
    const make = () => createMoeLayer({ ...shape, experts: 4, topK: 2, dtype, weights: { seed: 1 } });
    await expect(make()).rejects.toEqual(named('RangeError'));
    await expect(make()).rejects.toThrow(/memory is available|too large to pack|overflows/);
  });
});
