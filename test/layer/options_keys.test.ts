// Unknown or misspelt option keys are refused at every level, naming the closest known key, and
// boolean options must be booleans (a string 'false' is not false).
import { createMoeLayer, createMoeModel } from '../../lib';

const shape = { hidden: 32, intermediate: 16, experts: 4, topK: 2, weights: { seed: 1 } };

async function refusal(p: Promise<unknown>): Promise<{ code?: string; message: string; name: string }> {
  try {
    const r = await p;
    (r as { close?: () => void }).close?.();
  } catch (e) {
    return e as { code?: string; message: string; name: string };
  }
  throw new Error('expected a refusal, the call succeeded');
}

describe('unknown option keys', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['top level (dtyp)', { ...shape, dtyp: 'int4' }, /unknown option dtyp \(did you mean dtype\?/],
    ['top level (thread)', { ...shape, thread: 2 }, /unknown option thread \(did you mean threads\?/],
    ['offload.polcy', { ...shape, offload: { capacity: 2, polcy: 'lfu' } }, /unknown option offload\.polcy \(did you mean offload\.policy\?/],
    ['offload.coldcache', { ...shape, offload: { capacity: 2, coldcache: true } }, /unknown option offload\.coldcache \(did you mean offload\.coldCache\?/],
    [
      'offload.capacity.fractoin',
      { ...shape, offload: { capacity: { fractoin: 0.5 } } },
      /offload\.capacity\.fractoin \(did you mean offload\.capacity\.fraction\?/,
    ],
    [
      'sharedExperts.gate',
      { ...shape, sharedExperts: { intermediate: 8, gate: true } },
      /unknown option sharedExperts\.gate \(did you mean sharedExperts\.gated\?/,
    ],
    ['groups.keeps', { ...shape, groups: { count: 2, keeps: 1 } }, /unknown option groups\.keeps \(did you mean groups\.keep\?/],
    ['weights.sed', { ...shape, weights: { sed: 1 } }, /unknown option weights\.sed \(did you mean weights\.seed\?/],
  ];
  test.each(cases)('%s is refused with ERR_INVALID_OPTION', async (_name, options, message) => {
    const e = await refusal(createMoeLayer(options as never));
    expect(e.code).toBe('ERR_INVALID_OPTION');
    expect(e.message).toMatch(message);
  });

  test('createMoeModel refuses unknown keys too, and accepts layers', async () => {
    const e = await refusal(createMoeModel({ ...shape, layers: 2, layer: 3 } as never));
    expect(e.code).toBe('ERR_INVALID_OPTION');
    expect(e.message).toMatch(/unknown option layer \(did you mean layers\?/);
    const m = await createMoeModel({ ...shape, layers: 2 });
    expect(m.info().layers).toBe(2);
    m.close();
  });
});

describe('boolean options must be booleans', () => {
  test.each([
    ['poison', { ...shape, poison: 'false' }, /poison must be a boolean .*the string 'false'/],
    ['renormalize', { ...shape, renormalize: 1 }, /renormalize must be a boolean/],
    ['offload.coldCache', { ...shape, offload: { capacity: 2, coldCache: 'no' } }, /offload\.coldCache must be a boolean/],
    ['offload.prefetch', { ...shape, offload: { capacity: 2, prefetch: 0 } }, /offload\.prefetch must be a boolean/],
  ])('%s', async (_n, options, message) => {
    const e = await refusal(createMoeLayer(options as never));
    expect(e.code).toBe('ERR_INVALID_OPTION');
    expect(e.name).toBe('TypeError');
    expect(e.message).toMatch(message);
  });

  test('real booleans still work', async () => {
    const l = await createMoeLayer({ ...shape, poison: false, renormalize: true });
    expect(l.info().topK).toBe(2);
    l.close();
  });
});

describe('CAP run plans', () => {
  // Imported here so the layer tests above do not load the CAP runner.
  const { validatePlan } = require('../../lib/cap/plan') as typeof import('../../lib/cap/plan');
  test('an unknown plan key names the closest known one', () => {
    expect(() => validatePlan({ dtype: ['f32'] } as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTION',
        message: expect.stringMatching(/unknown plan option 'dtype' \(did you mean 'dtypes'\?/),
      }),
    );
    expect(() => validatePlan({ coldcache: true } as never)).toThrow(/did you mean 'coldCache'/);
  });
  test("coldCache must be a boolean ('false' is not)", () => {
    expect(() => validatePlan({ coldCache: 'false' } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION', message: expect.stringMatching(/coldCache must be a boolean/) }),
    );
  });
});
