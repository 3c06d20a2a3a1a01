// Bad input at the command line is refused up front, with one exit code (2) across commands and
// nothing left behind; outputs never silently replace an earlier run's or the command's own input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../lib/cli/main';
import { parseArgs } from '../../lib/cli/args';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-hard-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string; ms: number }> {
  let stdout = '',
    stderr = '';
  const t0 = Date.now();
  const status = await main(
    args,
    (s) => void (stdout += s),
    (s) => void (stderr += s),
  );
  return { status, stdout, stderr, ms: Date.now() - t0 };
}

const TINY = ['--preset', 'tiny', '--layers', '1', '--seq', '4', '--steps', '2', '--repeats', '2', '--quiet', '--hardware', 'h100-sxm'];

describe('moecap layer: counts refused before anything is built', () => {
  test('--tokens 17000000 is refused at once, naming the limit', async () => {
    const r = await cli(['layer', '--tokens', '17000000']);
    expect(r.status).toBe(2);
    expect(r.ms).toBeLessThan(5000);
    expect(r.stderr).toMatch(/--tokens 17000000: 17000000 tokens per pass is more than the 16777216/);
  });
  test('a token count that cannot fit memory names the bytes needed and available', async () => {
    const r = await cli(['layer', '--tokens', '16000000']);
    expect(r.status).toBe(2);
    expect(r.ms).toBeLessThan(5000);
    expect(r.stderr).toMatch(/^moecap: ERR_OUT_OF_MEMORY: --tokens 16000000: .* need about [\d.]+ GB .*, [\d.]+ GB available/);
  });
  test('--tokens 0 exits 2 (as run does) before the layer is built', async () => {
    const r = await cli(['layer', '--tokens', '0']);
    expect(r.status).toBe(2);
    expect(r.ms).toBeLessThan(3000);
    expect(r.stderr).toMatch(/--tokens entries must be positive integers, got 0/);
    expect((await cli(['run', ...TINY, '--batch', '0', '--out', path.join(tmp, 'b0')])).status).toBe(2);
  });
  test('--repeats 0 is refused, not silently 1', async () => {
    const r = await cli(['layer', '--tokens', '1', '--repeats', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--repeats must be an integer >= 1, got 0/);
    expect((await cli(['run', ...TINY, '--repeats', '0'])).stderr).toMatch(/repeats must be an integer >= 1, got 0/);
  });
});

describe('moecap run: refused runs', () => {
  test('--batch 1e9 names the options and the limit, not "Invalid typed array length"', async () => {
    const out = path.join(tmp, 'huge');
    const r = await cli(['run', ...TINY, '--batch', '1e9', '--out', out]);
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(/typed array/i);
    expect(r.stderr).toMatch(/--batch 1000000000 × --seq 4 \(tiny\): 4000000000 tokens per pass is more than/);
    expect(fs.existsSync(out)).toBe(false);
  });
  test('a run refused after the folder was made leaves no empty --out folder', async () => {
    const out = path.join(tmp, 'nested', 'deeper');
    // A preset far too large for this machine: refused when the layers are built.
    const r = await cli(['run', '--preset', 'deepseek-v3', '--layers', '64', '--quiet', '--hardware', 'h100-sxm', '--out', out]);
    expect(r.stderr).toMatch(/ERR_OUT_OF_MEMORY/);
    expect(r.status).toBe(2);
    expect(fs.existsSync(path.join(tmp, 'nested'))).toBe(false);
  });
});

describe('outputs do not silently replace earlier results', () => {
  const run1 = path.join(tmp, 'run1');
  beforeAll(async () => {
    const r = await cli(['run', ...TINY, '--out', run1]);
    expect(r.status).toBe(0);
  });

  test('report --out RUN/results.json is refused, naming the results file; --force is needed', async () => {
    const results = path.join(run1, 'results.json');
    const before = fs.readFileSync(results, 'utf8');
    const r = await cli(['report', run1, '--out', results]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is the results file being read/);
    expect(fs.readFileSync(results, 'utf8')).toBe(before);
    const other = path.join(tmp, 'notes.txt');
    fs.writeFileSync(other, 'my notes');
    const r2 = await cli(['report', run1, '--out', other]);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/exists and is not an HTML report \(8 bytes would be lost\)/);
    expect((await cli(['report', run1, '--out', other, '--force'])).status).toBe(0);
    // An earlier report may be replaced without --force.
    expect((await cli(['report', run1, '--out', other])).status).toBe(0);
  });

  test('run --out into an earlier run is refused naming its files; --force replaces them without mixing', async () => {
    const r = await cli(['run', ...TINY, '--out', run1, '--batch', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/holds an earlier run: \d+ file\(s\) .*results\.json.*\(2 measured config\(s\)\); use --resume/);
    // MoE-CAP's files: <out>/<org>/<model>/.
    const sub = (d: string) =>
      path.join(
        d,
        fs.readdirSync(d).find((e) => fs.statSync(path.join(d, e)).isDirectory())!,
      );
    const model = path.relative(run1, sub(sub(run1)));
    const oldFiles = fs.readdirSync(path.join(run1, model));
    await new Promise((res) => setTimeout(res, 1100)); // MoE-CAP file names carry the second
    const r2 = await cli(['run', ...TINY, '--out', run1, '--batch', '2', '--force']);
    expect(r2.status).toBe(0);
    const newFiles = fs.readdirSync(path.join(run1, model));
    expect(newFiles.length).toBe(oldFiles.length);
    expect(newFiles.filter((f) => oldFiles.includes(f))).toEqual([]);
  });
});

describe('flags take explicit boolean words', () => {
  const spec = [{ name: 'cold', type: 'boolean' as const, description: '' }];
  test.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['NO', false],
  ])('--cold=%s', (v, want) => {
    expect(parseArgs([`--cold=${v}`], spec).options.cold).toBe(want);
  });
  test('--cold=nope is refused (it once counted as true)', async () => {
    expect(() => parseArgs(['--cold=nope'], spec)).toThrow(/--cold is a flag: .*got 'nope'/);
    expect((await cli(['layer', '--cold=nope'])).status).toBe(2);
  });
});
