// Offloaded experts give bitwise the all-resident output: every dtype, policy, capacity 1..E,
// with and without prefetch, single layers, concurrent passes, and multi-layer models.
import { DTYPES, POLICIES, native, sameBits, tokens } from './helpers';

const SHAPE = { hidden: 67, intermediate: 45, experts: 6, topK: 2, threads: 2, weights: { seed: 11 } };
const INPUTS = [5, 1, 16, 3].map((T, i) => ({ T, x: tokens(T, SHAPE.hidden, 100 + i) }));

describe('offload: bitwise equal to the all-resident layer', () => {
  for (const dtype of DTYPES) {
    test(`${dtype}: every policy, capacity 1..${SHAPE.experts}, prefetch on/off`, async () => {
      const ref = await native.createLayer({ ...SHAPE, dtype });
      const want = [];
      for (const { x } of INPUTS) want.push((await ref.forward(x)).output);
      ref.close();
      for (const policy of POLICIES)
        for (let capacity = 1; capacity <= SHAPE.experts; capacity++)
          for (const prefetch of [true, false]) {
            const l = await native.createLayer({ ...SHAPE, dtype, offload: { capacity, policy, prefetch } });
            for (let round = 0; round < 2; round++) {
              if (policy === 'static' && round === 1) l.pinStatic();
              for (let i = 0; i < INPUTS.length; i++) {
                const r = await l.forward(INPUTS[i].x);
                if (!sameBits(r.output, want[i])) throw new Error(`${dtype} ${policy} capacity ${capacity} prefetch ${prefetch} input ${i}: differs`);
                const o = r.stats.offload;
                expect(o.hits + o.misses).toBe(r.stats.distinctExperts);
                expect(o.resident.length).toBeLessThanOrEqual(capacity);
              }
            }
            l.close();
          }
    });
  }

  test('capacity in bytes and as a fraction', async () => {
    const info = (await native.createLayer({ ...SHAPE, offload: { capacity: 1 } })).info();
    const l = await native.createLayer({ ...SHAPE, offload: { capacity: { bytes: info.expertBytes * 2.5 } } });
    expect(l.offloadInfo().capacity).toBe(2);
    const f = await native.createLayer({ ...SHAPE, offload: { capacity: { fraction: 0.5 } } });
    expect(f.offloadInfo().capacity).toBe(3);
    await expect(native.createLayer({ ...SHAPE, offload: { capacity: { bytes: 10 } } })).rejects.toThrow(/offload\.capacity\.bytes .* smaller than one expert/);
  });

  test('all resident after the first pass when capacity covers every expert', async () => {
    const l = await native.createLayer({ ...SHAPE, offload: { capacity: SHAPE.experts } });
    const x = tokens(64, SHAPE.hidden, 9);
    const a = await l.forward(x);
    const b = await l.forward(x);
    expect(b.stats.offload.misses).toBe(0);
    expect(b.stats.offload.bytesRead).toBe(0);
    expect(a.stats.offload.bytesRead).toBe(a.stats.offload.misses * l.info().expertBytes);
  });

  test('concurrent forwards on one offloaded layer (capacity 1 and 2)', async () => {
    const ref = await native.createLayer({ ...SHAPE, dtype: 'bf16' });
    const xs = Array.from({ length: 12 }, (_, i) => tokens(1 + (i % 5) * 3, SHAPE.hidden, 500 + i));
    const want = await Promise.all(xs.map((x) => ref.forward(x)));
    for (const capacity of [1, 2]) {
      const l = await native.createLayer({ ...SHAPE, dtype: 'bf16', offload: { capacity, policy: 'lfru' } });
      const got = await Promise.all(xs.map((x) => l.forward(x)));
      got.forEach((r: any, i: number) => expect(sameBits(r.output, want[i].output)).toBe(true));
    }
  });
});

describe('offload: multi-layer model', () => {
  const MODEL = { ...SHAPE, layers: 3 };

  test('bitwise equal to the resident model, with next-layer prediction and prefetch', async () => {
    for (const dtype of ['f32', 'int8']) {
      const ref = await native.createModel({ ...MODEL, dtype });
      for (const policy of POLICIES)
        for (const capacity of [1, 3, 6])
          for (const prefetch of [true, false]) {
            const m = await native.createModel({ ...MODEL, dtype, offload: { capacity, policy, prefetch } });
            for (const { x } of INPUTS) {
              const [a, b] = [await ref.forward(x), await m.forward(x)];
              expect(sameBits(a.output, b.output)).toBe(true);
              expect(b.stats.layers).toHaveLength(3);
              const p = b.stats.prediction;
              if (prefetch) expect(p.total).toBeGreaterThan(0);
              else expect(p.total).toBe(0);
              expect(p.correct).toBeLessThanOrEqual(p.total);
            }
            const s = m.offloadStats();
            if (prefetch && capacity > 1) expect(s.prefetchIssued).toBeGreaterThan(0);
            expect(s.prefetchUsed).toBeLessThanOrEqual(s.prefetchIssued);
            m.close();
          }
    }
  });

  test('residual stack: the model output is x + sum of its layers', async () => {
    const m = await native.createModel({ ...SHAPE, layers: 2 });
    const l0 = await native.createLayer({ ...SHAPE, weights: { seed: 11 } });
    const l1 = await native.createLayer({ ...SHAPE, weights: { seed: 12 } });
    const x = tokens(4, SHAPE.hidden, 77);
    const h1 = x.slice();
    const y0 = (await l0.forward(x)).output;
    for (let i = 0; i < h1.length; i++) h1[i] += y0[i];
    const y1 = (await l1.forward(h1)).output;
    const want = h1.map((v, i) => v + y1[i]);
    expect(sameBits((await m.forward(x)).output, want)).toBe(true);
  });

  test('concurrent forwards on one offloaded model', async () => {
    const ref = await native.createModel({ ...MODEL });
    const m = await native.createModel({ ...MODEL, offload: { capacity: 2, policy: 'lru' } });
    const xs = Array.from({ length: 8 }, (_, i) => tokens(1 + i, SHAPE.hidden, 900 + i));
    const want = await Promise.all(xs.map((x) => ref.forward(x)));
    const got = await Promise.all(xs.map((x) => m.forward(x)));
    got.forEach((r: any, i: number) => expect(sameBits(r.output, want[i].output)).toBe(true));
  });

  test('option errors name the argument', async () => {
    expect(() => native.createModel({ ...SHAPE })).toThrow(/layers is required/);
    expect(() => native.createModel({ ...SHAPE, layers: 0 })).toThrow(/layers must be an integer/);
    expect(() => native.createModel({ ...MODEL, offload: {} })).toThrow(/offload\.capacity is required/);
    expect(() => native.createModel({ ...MODEL, offload: { capacity: 0 } })).toThrow(/offload\.capacity/);
    expect(() => native.createModel({ ...MODEL, offload: { capacity: 'x' } })).toThrow(/offload\.capacity must be a number/);
    expect(() => native.createModel({ ...MODEL, offload: { capacity: 2, policy: 'fifo' } })).toThrow(/offload\.policy/);
    expect(() => native.createModel({ ...MODEL, offload: { capacity: 2, prefetch: 1 } })).toThrow(/offload\.prefetch/);
    expect(() => native.createModel({ ...MODEL, offload: { capacity: 2, path: 3 } })).toThrow(/offload\.path/);
    expect(() => native.createModel({ ...MODEL, offload: { capacity: 2, coldCache: 'y' } })).toThrow(/offload\.coldCache/);
    expect(() => native.createLayer({ ...SHAPE, offload: 5 })).toThrow(/offload must be an object/);
    const r = await native.createLayer({ ...SHAPE });
    expect(() => r.offloadInfo()).toThrow(/offload is not enabled/);
  });
});
