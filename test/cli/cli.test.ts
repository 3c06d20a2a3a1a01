// `moecap run` end to end on a small shape, and bad input at the command line.
import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';

const BIN = path.join(__dirname, '..', '..', 'bin', 'moecap.js');
const small = ['--hidden', '64', '--intermediate', '32', '--experts', '8', '--top-k', '2', '--tokens', '1,5', '--repeats', '3'];

test('moecap layer prints the table with measured figures and the fp64 error', () => {
  const out = execFileSync(process.execPath, [BIN, 'layer', ...small], { encoding: 'utf8' });
  expect(out).toMatch(/H=64 F=32 E=8 k=2 dtype=f32/);
  const rows = out.split('\n').filter((l) => /^\s+[15]\s/.test(l));
  expect(rows).toHaveLength(2);
  for (const r of rows) {
    const cells = r.trim().split(/\s+/);
    expect(Number(cells[1])).toBeGreaterThan(0); // ms/pass
    expect(Number(cells[6])).toBeLessThan(1e-5); // rel L2 vs fp64
  }
});

test('moecap layer --json gives the rows', () => {
  const out = execFileSync(process.execPath, [BIN, 'layer', ...small, '--json'], { encoding: 'utf8' });
  const j = JSON.parse(out);
  expect(j.rows.map((r: { tokens: number }) => r.tokens)).toEqual([1, 5]);
  expect(j.rows[0].distinctExperts).toBe(2);
  expect(j.rows[1].relativeL2).toBeLessThan(1e-5);
});

test('an unknown option is one clear line and exit code 2', () => {
  const r = spawnSync(process.execPath, [BIN, 'layer', '--bogus', '3'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/unknown option --bogus/);
});

test('a bad value is one clear line and the bad-input exit code', () => {
  const r = spawnSync(process.execPath, [BIN, 'layer', ...small, '--top-k', '9'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^moecap: ERR_INVALID_(ARGUMENT|OPTION): topK \(9\) must not exceed experts \(8\)/);
});

test('moecap info reports the ISAs', () => {
  const j = JSON.parse(execFileSync(process.execPath, [BIN, 'info'], { encoding: 'utf8' }));
  expect(j.supportedIsas).toContain('generic');
});
