// Native errors carry the stable code of lib/errors.ts besides their class (TypeError, RangeError,
// Error): the core gives every error a code and the binding maps both in one place.
import { backendInfo } from '../../lib/backend';
import { createMoeLayer } from '../../lib';
import { makeWeights } from '../helpers';

const cfg = { hidden: 16, intermediate: 8, experts: 4, topK: 2, scoring: 'softmax' as const, renormalize: true };
// Errors come from the main realm, jest's globals from a vm context: compare by name and code (the
// API re-raises addon errors as MoecapError / MoecapTypeError / MoecapRangeError with the addon's
// name: 'Error', 'TypeError', 'RangeError').
const coded = (name: string, code: string) => expect.objectContaining({ name, code });

describe('native error codes', () => {
  test('a wrong typed array is ERR_INVALID_ARGUMENT', async () => {
    const layer = await createMoeLayer({ ...cfg, weights: makeWeights(cfg, 1) });
    try {
      await expect(layer.forward(new Float64Array(32) as unknown as Float32Array)).rejects.toEqual(coded('TypeError', 'ERR_INVALID_ARGUMENT'));
      await expect(layer.forward(new Float32Array(15))).rejects.toEqual(coded('RangeError', 'ERR_INVALID_ARGUMENT'));
    } finally {
      layer.close();
    }
  });

  test('a bad option value is ERR_INVALID_OPTION', async () => {
    await expect(createMoeLayer({ ...cfg, dtype: 'fp16' as 'f32', weights: { seed: 1 } })).rejects.toEqual(coded('TypeError', 'ERR_INVALID_OPTION'));
    await expect(createMoeLayer({ ...cfg, groups: { count: 3, keep: 1 }, weights: { seed: 1 } })).rejects.toEqual(coded('RangeError', 'ERR_INVALID_OPTION'));
  });

  test('a closed layer is ERR_CLOSED', async () => {
    const layer = await createMoeLayer({ ...cfg, weights: { seed: 1 } });
    layer.close();
    await expect(layer.forward(new Float32Array(16))).rejects.toEqual(coded('Error', 'ERR_CLOSED'));
    expect(() => layer.info()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });

  test('a layer too large for memory is ERR_OUT_OF_MEMORY', async () => {
    await expect(createMoeLayer({ hidden: 65536, intermediate: 65536, experts: 4096, topK: 2, weights: { seed: 1 } })).rejects.toEqual(
      coded('RangeError', 'ERR_OUT_OF_MEMORY'),
    );
  });

  // experts = 2^31 - 1: the router's panel count (experts + 31) / 32 overflowed a 32-bit int, and
  // the refusal printed 11.75 TiB. Router 2^26 panels · 4096 B + (2^31 - 1) experts · 6144 B.
  test('a layer of 2^31 - 1 experts is refused with its true size, before allocating', async () => {
    const p = createMoeLayer({ hidden: 32, intermediate: 16, experts: 2147483647, topK: 1, weights: { seed: 1 } });
    await expect(p).rejects.toEqual(coded('RangeError', 'ERR_OUT_OF_MEMORY'));
    await expect(createMoeLayer({ hidden: 32, intermediate: 16, experts: 2147483647, topK: 1, weights: { seed: 1 } })).rejects.toThrow(
      /weights of this layer need 12\.25 TiB in f32 but only/,
    );
  });

  test("backend 'cuda' where it cannot run is ERR_BACKEND_UNAVAILABLE", async () => {
    if (process.env.MOECAP_BACKEND || backendInfo('cuda').backend === 'cuda') return; // a usable GPU, or forced
    await expect(createMoeLayer({ ...cfg, backend: 'cuda', weights: { seed: 1 } })).rejects.toEqual(coded('Error', 'ERR_BACKEND_UNAVAILABLE'));
  });
});
