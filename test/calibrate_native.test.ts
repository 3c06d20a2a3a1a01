// The addon's calibrate(): the machine's ceilings (native/core/calibrate), as the bench and the CAP runner use
// them. Only the shape and sanity of the figures are asserted — they are measurements.
import { loadAddon, systemInfo } from '../lib';

const addon = loadAddon();
const ISAS = systemInfo().supportedIsas as ('avx512' | 'avx2' | 'generic')[];

describe('calibrate', () => {
  test.each(ISAS)('measures read bandwidth and arithmetic peaks with the %s loops', async (isa) => {
    const c = await addon.calibrate({ readBytes: 64 << 20, repeats: 3, threads: 2, isa });
    expect(c.isa).toBe(isa);
    expect(c.threads).toBe(2);
    expect(c.repeats).toBe(3);
    for (const m of [c.readBandwidth, c.fp32Flops!]) {
      expect(m.min).toBeGreaterThan(0);
      expect(m.min).toBeLessThanOrEqual(m.median);
      expect(m.median).toBeLessThanOrEqual(m.max);
    }
    expect(c.readBandwidth.unit).toBe('B/s');
    expect(c.fp32Flops!.unit).toBe('FLOP/s');
    if (isa === 'avx512') {
      expect(c.bf16Flops!.median).toBeGreaterThan(0);
      expect(c.int8Ops!.unit).toBe('OP/s');
    } else {
      expect(c.bf16Flops).toBeNull();
      expect(c.int8Ops).toBeNull();
    }
  });

  test('compute: false measures the read bandwidth only', async () => {
    const c = await addon.calibrate({ readBytes: 32 << 20, repeats: 2, compute: false });
    expect(c.readBandwidth.median).toBeGreaterThan(0);
    expect(c.fp32Flops).toBeNull();
    expect(c.int8Ops).toBeNull();
  });

  test('rejects bad options with a clear error', async () => {
    // The addon's error classes come from Node's realm, not jest's sandbox: compare names.
    const thrown = (f: () => unknown): Error => {
      try {
        f();
      } catch (e) {
        return e as Error;
      }
      throw new Error('did not throw');
    };
    expect(thrown(() => addon.calibrate({ repeats: 0 }))).toMatchObject({ name: 'RangeError', message: expect.stringMatching(/repeats/) });
    expect(thrown(() => addon.calibrate({ readBytes: 1.5 }))).toMatchObject({ name: 'RangeError', message: expect.stringMatching(/readBytes/) });
    expect(thrown(() => addon.calibrate({ isa: 'sse9' } as never))).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/isa/) });
    expect(thrown(() => addon.calibrate(42 as never))).toMatchObject({ name: 'TypeError', message: expect.stringMatching(/options/) });
  });
});
