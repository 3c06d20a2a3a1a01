// Bad input: a TypeError or RangeError that names the argument, never a crash.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { createMoeLayer, loadAddon, systemInfo, type MoeLayerOptions } from '../../lib';
import { ISA_NAMES } from '../../lib/types';
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
    [
      'an unknown group score',
      () => ({ ...good(), groups: { count: 2, keep: 1, score: 'sum' as 'max' } }),
      'TypeError',
      /groups.score must be 'top2-sum' or 'max'/,
    ],
    ['an unknown scoring', () => ({ ...good(), scoring: 'relu' as 'softmax' }), 'TypeError', /scoring must be 'softmax', 'sigmoid' or 'sparsemixer'/],
    ['an unknown dtype', () => ({ ...good(), dtype: 'fp16' as 'f32' }), 'TypeError', /dtype must be/],
    // The native list (kernel_table.h kIsaNames) and lib's ISA_NAMES are the same list.
    ['an unknown isa', () => ({ ...good(), isa: 'sse9' as 'auto' }), 'RangeError', new RegExp(`isa must be one of ${ISA_NAMES.join(', ')}, got 'sse9'`)],
    [
      'a wrong typed-array type',
      () => {
        const o = good();
        (o.weights as { router: unknown }).router = Array.from((o.weights as { router: Float32Array }).router);
        return o;
      },
      'TypeError',
      /weights.router must be a Float32Array/,
    ],
    [
      'a wrong typed-array length',
      () => {
        const o = good();
        (o.weights as { gate: Float32Array }).gate = new Float32Array(10).fill(1);
        return o;
      },
      'RangeError',
      /weights.gate must have \[experts, intermediate, hidden\] = 512 elements, got 10/,
    ],
    [
      'a NaN weight',
      () => {
        const o = good();
        (o.weights as { up: Float32Array }).up[37] = NaN;
        return o;
      },
      'RangeError',
      /weights.up\[37\] is NaN/,
    ],
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

// A named kernel set the CPU cannot run is refused with the list of those it runs (never a
// silent fallback): on x86 that is neon, on arm64 avx512 and avx2.
describe('an ISA this CPU cannot run', () => {
  const addon = loadAddon();
  const supported = systemInfo().supportedIsas as string[];
  const foreign = (['neon', 'avx512', 'avx2'] as const).filter((i) => !supported.includes(i));
  const runs = new RegExp(`it runs: ${supported.join(', ')}$`);

  test('systemInfo lists what it runs, best first, generic last', () => {
    expect(supported[0]).toBe(systemInfo().bestIsa);
    expect(supported[supported.length - 1]).toBe('generic');
    if (process.arch === 'x64') expect(supported).not.toContain('neon');
    if (process.arch === 'arm64') expect(supported).toEqual(['neon', 'generic']);
  });

  test.each(foreign)('isa: %s is refused (ERR_INVALID_OPTION), naming what this CPU runs', async (isa) => {
    const err = await createMoeLayer({ ...good(), isa }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'RangeError', code: 'ERR_INVALID_OPTION' });
    expect((err as Error).message).toMatch(new RegExp(`^isa '${isa}' needs .+, which this CPU lacks; `));
    expect((err as Error).message).toMatch(runs);
  });

  test.each(foreign)('calibrate({ isa: %s }) is refused the same way', (isa) => {
    let err: unknown = null;
    try {
      void addon.calibrate({ isa, readBytes: 1 << 20, repeats: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'RangeError', code: 'ERR_INVALID_OPTION' });
    expect((err as Error).message).toMatch(runs);
  });

  test.each(foreign)('MOECAP_ISA=%s is refused, naming the variable', (isa) => {
    const script = `require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist'))}).createMoeLayer(${JSON.stringify({ ...cfg, weights: { seed: 1 } })})
      .then(() => process.stdout.write('created'), (e) => process.stdout.write(e.name + ' ' + e.code + ': ' + e.message));`;
    const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, MOECAP_ISA: isa }, encoding: 'utf8' });
    expect(out).toMatch(new RegExp(`^RangeError ERR_INVALID_OPTION: MOECAP_ISA '${isa}' needs .+, which this CPU lacks; it runs: ${supported.join(', ')}$`));
  });

  test('every ISA it lists is accepted by name', async () => {
    for (const isa of supported) {
      const layer = await createMoeLayer({ ...good(), isa: isa as 'auto' });
      expect(layer.info().isa).toBe(isa);
      layer.close();
    }
  });
});

describe('forward rejects', () => {
  let layer: Awaited<ReturnType<typeof createMoeLayer>>;
  beforeAll(async () => {
    layer = await createMoeLayer(good());
  });
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
