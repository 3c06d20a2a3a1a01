// One error hierarchy with stable codes: every error moecap raises is `instanceof MoecapError` with a
// `code` from ERROR_CODES, argument errors stay TypeError/RangeError, and the CLI maps codes to exit codes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, ERROR_CODES, MoecapError, MoecapRangeError, MoecapTypeError, PlanError, ReportInputError, UsageError } from '../lib';
import { exitCodeFor, shown } from '../lib/errors';
import { callNative, fromNative } from '../lib/native/call';
import { parseArgs } from '../lib/cli/args';
import { main } from '../lib/cli/main';
import { validatePlan } from '../lib/cap/plan';
import { loadResults } from '../lib/report/write_report';

const shape = { hidden: 16, intermediate: 8, experts: 4, topK: 2, threads: 1, weights: { seed: 3 } };

async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

function expectCoded(e: unknown, code: string | RegExp): MoecapError {
  expect(e).toBeInstanceOf(MoecapError);
  const c = (e as MoecapError).code;
  expect(ERROR_CODES).toContain(c);
  if (typeof code === 'string') expect(c).toBe(code);
  else expect(c).toMatch(code);
  return e as MoecapError;
}

test('a wrong typed array: a TypeError with ERR_INVALID_ARGUMENT, same message', async () => {
  const l = await createMoeLayer(shape);
  try {
    const e = await caught(() => l.forward(new Float64Array(16) as unknown as Float32Array));
    expectCoded(e, 'ERR_INVALID_ARGUMENT');
    expect(e).toBeInstanceOf(TypeError);
    expect(e).toBeInstanceOf(MoecapTypeError);
    expect((e as Error).message).toMatch(/x/);
    const r = await caught(() => l.forward(new Float32Array(15)));
    expectCoded(r, 'ERR_INVALID_ARGUMENT');
    expect(r).toBeInstanceOf(RangeError);
  } finally {
    l.close();
  }
});

test('a closed layer: ERR_CLOSED, sync and async', async () => {
  const l = await createMoeLayer(shape);
  l.close();
  expectCoded(await caught(() => l.forward(new Float32Array(16))), 'ERR_CLOSED');
  expectCoded(await caught(() => l.info()), 'ERR_CLOSED');
});

test('a bad option: a RangeError with an option or argument code', async () => {
  const e = await caught(() => createMoeLayer({ ...shape, topK: 9 }));
  expectCoded(e, /^ERR_INVALID_(OPTION|ARGUMENT)$/);
  expect(e).toBeInstanceOf(RangeError);
  expect((e as Error).message).toMatch(/topK \(9\) must not exceed experts \(4\)/);
  const t = await caught(() => createMoeLayer(null as never));
  expectCoded(t, 'ERR_INVALID_ARGUMENT');
  expect(t).toBeInstanceOf(TypeError);
  const p = await caught(() => validatePlan({ batch: [0] }));
  expectCoded(p, 'ERR_INVALID_OPTION');
  expect(p).toBeInstanceOf(PlanError);
  expect(p).toBeInstanceOf(RangeError);
  expectCoded(await caught(() => validatePlan({ bogus: 1 } as never)), 'ERR_INVALID_OPTION');
});

test('a bad CLI flag: UsageError ERR_USAGE, one line, exit code 2', async () => {
  const e = await caught(() => parseArgs(['--nope'], [{ name: 'json', type: 'boolean', description: '' }]));
  expectCoded(e, 'ERR_USAGE');
  expect(e).toBeInstanceOf(UsageError);
  let err = '';
  const code = await main(
    ['counters', '--nope'],
    () => undefined,
    (s) => (err += s),
  );
  expect(code).toBe(2);
  expect(err).toMatch(/^moecap: ERR_USAGE: unknown option --nope \(known: --json --help\)\n$/);
  err = '';
  expect(
    await main(
      ['frobnicate'],
      () => undefined,
      (s) => (err += s),
    ),
  ).toBe(2);
  expect(err).toMatch(/^moecap: ERR_USAGE: unknown command 'frobnicate'/);
  expect(
    await main(
      ['counters', 'extra'],
      () => undefined,
      () => undefined,
    ),
  ).toBe(2);
});

test('bad report input: ReportInputError with ERR_CORRUPT_FILE or ERR_IO, exit code 1', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-errors-'));
  try {
    const empty = path.join(dir, 'empty.json');
    fs.writeFileSync(empty, '');
    const e = await caught(() => loadResults(empty));
    expectCoded(e, 'ERR_CORRUPT_FILE');
    expect(e).toBeInstanceOf(ReportInputError);
    expect((e as Error).name).toBe('ReportInputError');
    expectCoded(await caught(() => loadResults(path.join(dir, 'missing.json'))), 'ERR_IO');
    let err = '';
    expect(
      await main(
        ['report', empty],
        () => undefined,
        (s) => (err += s),
      ),
    ).toBe(1);
    expect(err).toMatch(/^moecap: ERR_CORRUPT_FILE: .*empty\.json: the file is empty\n$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('fromNative: the addon error as a moecap error', () => {
  test('without a code: by class, and ERR_CLOSED for a closed object', () => {
    const t = fromNative(new TypeError('x must be a Float32Array'));
    expect(t).toBeInstanceOf(MoecapTypeError);
    expect(t).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: 'x must be a Float32Array' });
    expect(fromNative(new RangeError('too big'))).toBeInstanceOf(MoecapRangeError);
    expect(fromNative(new Error('this MoE layer is closed'))).toMatchObject({ code: 'ERR_CLOSED' });
    const i = fromNative(new Error('something odd'));
    expect(i).toBeInstanceOf(MoecapError);
    expect(i).not.toBeInstanceOf(TypeError);
    expect(i).toMatchObject({ code: 'ERR_INTERNAL' });
  });
  test("with the binding's code: kept", () => {
    const e = Object.assign(new RangeError('needs 3 GB, 1 GB available'), { code: 'ERR_OUT_OF_MEMORY' });
    const m = fromNative(e);
    expect(m).toBeInstanceOf(MoecapRangeError);
    expect(m).toMatchObject({ code: 'ERR_OUT_OF_MEMORY', message: e.message });
    expect(fromNative(Object.assign(new Error('weights file'), { code: 'ERR_CORRUPT_FILE' }))).toMatchObject({ code: 'ERR_CORRUPT_FILE' });
    expect(fromNative(Object.assign(new TypeError('odd'), { code: 'ENOPE' }))).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const already = new MoecapError('ERR_IO', 'x');
    expect(fromNative(already)).toBe(already);
  });
  test('callNative converts throws and rejections', async () => {
    expect(() =>
      callNative(() => {
        throw new TypeError('bad');
      }),
    ).toThrow(MoecapTypeError);
    await expect(callNative(() => Promise.reject(new RangeError('bad')))).rejects.toBeInstanceOf(MoecapRangeError);
    expect(callNative(() => 7)).toBe(7);
    await expect(callNative(() => Promise.resolve(8))).resolves.toBe(8);
  });
});

test('exit codes: bad input 2, anything else 1', () => {
  expect(exitCodeFor(new UsageError('x'))).toBe(2);
  expect(exitCodeFor(new PlanError('x'))).toBe(2);
  expect(exitCodeFor(new MoecapTypeError('ERR_INVALID_ARGUMENT', 'x'))).toBe(2);
  expect(exitCodeFor(new MoecapError('ERR_IO', 'x'))).toBe(1);
  expect(exitCodeFor(new RangeError('x'))).toBe(1);
  expect(exitCodeFor('x')).toBe(1);
});

test('shown: a value of outside input quoted as its JSON, cut after about 60 characters without walking the rest', () => {
  expect(shown([128])).toBe('[128]');
  expect(shown({ a: 1, b: [true, null, 'x'] })).toBe('{"a":1,"b":[true,null,"x"]}');
  expect(shown('abc')).toBe('"abc"');
  expect(shown(undefined)).toBe('undefined');
  expect(shown(-1.5)).toBe('-1.5');
  let deep: unknown[] = [1];
  for (let i = 0; i < 200_000; i++) deep = [deep]; // JSON.stringify(deep) and String(deep) overflow the stack
  expect(shown(deep)).toBe('['.repeat(60) + '…');
  const long = shown(new Array(10_000_000).fill(7));
  expect(long).toMatch(/^\[7,7,7,.*…$/);
  expect(long.length).toBe(61);
  expect(shown('x'.repeat(1000))).toBe('"' + 'x'.repeat(59) + '…');
});
