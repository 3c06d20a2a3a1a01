// Bad input: a TypeError or RangeError that names the argument, never a crash.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { createMoeLayer, type MoeLayerOptions } from '../../lib';
import { gaussian, makeWeights } from '../helpers';

// Native errors come from the main realm, jest's globals from a vm context: compare by name.
const named = (name: string) => expect.objectContaining({ name });

const cfg = { hidden: 16, intermediate: 8, experts: 4, topK: 2, scoring: 'softmax' as const, renormalize: true };
const good = (): MoeLayerOptions => ({ ...cfg, weights: makeWeights(cfg, 1) });

describe('createMoeLayer rejects', () => {
  const cases: [string, () => MoeLayerOptions, string, RegExp][] = [
    ['a missing size', () => ({ ...good(), hidden: undefined as unknown as number }), 'TypeError', /hidden is required/],
    ['a non-integer size', () => ({ ...good(), hidden: 7.5 }), 'RangeError', /hidden must be an integer/],
    ['a zero size', () => ({ ...good(), experts: 0 }), 'RangeError', /experts must be an integer in \[1/],
    ['k > E', () => ({ ...good(), topK: 5 }), 'RangeError', /topK \(5\) must not exceed experts \(4\)/],
    ['groups that do not divide E', () => ({ ...good(), groups: { count: 3, keep: 1 } }), 'RangeError', /groups.count \(3\) must divide experts \(4\)/],
    ['keep > count', () => ({ ...good(), groups: { count: 2, keep: 3 } }), 'RangeError', /groups.keep \(3\) must not exceed groups.count \(2\)/],
    ['an unknown scoring', () => ({ ...good(), scoring: 'relu' as 'softmax' }), 'TypeError', /scoring must be 'softmax' or 'sigmoid'/],
    ['an unknown dtype', () => ({ ...good(), dtype: 'fp8' as 'f32' }), 'TypeError', /dtype must be/],
    ['an unknown isa', () => ({ ...good(), isa: 'neon' as 'auto' }), 'RangeError', /isa must be/],
    ['a wrong typed-array type', () => { const o = good(); (o.weights as { router: unknown }).router = Array.from((o.weights as { router: Float32Array }).router); return o; }, 'TypeError', /weights.router must be a Float32Array/],
    ['a wrong typed-array length', () => { const o = good(); (o.weights as { gate: Float32Array }).gate = new Float32Array(10).fill(1); return o; }, 'RangeError', /weights.gate must have \[experts, intermediate, hidden\] = 512 elements, got 10/],
    ['a NaN weight', () => { const o = good(); (o.weights as { up: Float32Array }).up[37] = NaN; return o; }, 'RangeError', /weights.up\[37\] is NaN/],
    ['a bias of the wrong length', () => ({ ...good(), selectionBias: new Float32Array(3) }), 'RangeError', /selectionBias must have \[experts\] = 4 elements/],
    ['a negative capacity factor', () => ({ ...good(), capacityFactor: -1 }), 'RangeError', /capacityFactor/],
    ['a non-boolean pinThreads', () => ({ ...good(), pinThreads: 1 as unknown as boolean }), 'TypeError', /pinThreads must be a boolean/],
    ['a missing shared weight', () => ({ ...good(), sharedExperts: { intermediate: 8 } }), 'TypeError', /weights.shared/],
  ];
  test.each(cases)('%s', async (_name, make, cls, msg) => {
    const p = createMoeLayer(make());
    await expect(p).rejects.toEqual(named(cls));
    await expect(createMoeLayer(make())).rejects.toThrow(msg);
  });

  test('a size whose weights would not fit in memory (says how much is needed and available)', async () => {
    const p = createMoeLayer({ hidden: 65536, intermediate: 65536, experts: 4096, topK: 2, weights: { seed: 1 } });
    await expect(p).rejects.toEqual(named('RangeError'));
    await expect(createMoeLayer({ hidden: 65536, intermediate: 65536, experts: 4096, topK: 2, weights: { seed: 1 } })).rejects.toThrow(
      /need [\d.]+ (TiB|PiB) in f32 but only [\d.]+ GiB of memory is available/,
    );
  });

  // The addon reads MOECAP_ISA from the process environment, which jest's process.env copy never
  // reaches: the layer is created in a Node process started with the variable set.
  test('an invalid MOECAP_ISA', () => {
    const script = `require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist'))}).createMoeLayer(${JSON.stringify({ ...cfg, weights: { seed: 1 } })})
      .then(() => process.stdout.write('created'), (e) => process.stdout.write(e.name + ': ' + e.message));`;
    const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, MOECAP_ISA: 'sse9' }, encoding: 'utf8' });
    expect(out).toMatch(/MOECAP_ISA must be one of/);
    expect(out).toMatch(/^RangeError: /);
  });
});

describe('forward rejects', () => {
  let layer: Awaited<ReturnType<typeof createMoeLayer>>;
  beforeAll(async () => { layer = await createMoeLayer(good()); });
  afterAll(() => layer.close());

  test('x of the wrong type', async () => {
    await expect(layer.forward(new Float64Array(32) as unknown as Float32Array)).rejects.toEqual(named('TypeError'));
    await expect(layer.forward(new Float64Array(32) as unknown as Float32Array)).rejects.toThrow(/x must be a Float32Array/);
  });
  test('x of a length that is not a multiple of hidden', async () => {
    await expect(layer.forward(new Float32Array(17).fill(1))).rejects.toEqual(named('RangeError'));
    await expect(layer.forward(new Float32Array(17).fill(1))).rejects.toThrow(/positive multiple of hidden = 16\), got 17/);
  });
  test('non-finite values in x, saying where', async () => {
    const x = gaussian(3 * 16, 2);
    x[2 * 16 + 5] = NaN;
    await expect(layer.forward(x)).rejects.toThrow(/x is not finite at token 2, hidden index 5 \(NaN\)/);
    x[2 * 16 + 5] = Infinity;
    await expect(layer.route(x)).rejects.toEqual(named('RangeError'));
  });
  test('a sample index out of range', async () => {
    await expect(layer.reference(gaussian(16, 3), new Int32Array([1]))).rejects.toThrow(/sample\[0\] = 1 is not a token index/);
  });
});

test('a closed layer rejects, in-flight passes finish', async () => {
  const layer = await createMoeLayer(good());
  const x = gaussian(64 * 16, 4);
  const inFlight = layer.forward(x);
  layer.close();
  expect(layer.closed).toBe(true);
  await expect(inFlight).resolves.toHaveProperty('output');
  await expect(layer.forward(x)).rejects.toThrow(/closed/);
  expect(() => layer.info()).toThrow(/closed/);
});
