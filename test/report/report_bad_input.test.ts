// Bad input to `moecap report`: one clear line, a non-zero exit, and no HTML file (not even half of one).
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { readResults, runFixture, writeResults, removeFixtureProfile } from './fixture';
import { writeReport } from '../../lib/report/write_report';

const BIN = path.join(__dirname, '..', '..', 'bin', 'moecap.js');

let good: Record<string, unknown>;
let dir: string;

beforeAll(async () => {
  const run = await runFixture({ phases: ['decode'], dtypes: ['f32'], batch: [1, 4], repeats: 2 });
  good = readResults(run);
  fs.rmSync(run, { recursive: true, force: true });
  dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'moecap-report-bad-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  removeFixtureProfile();
});

function report(name: string, content: string, extra: string[] = []) {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, content);
  const out = path.join(dir, `${name}.html`);
  const r = spawnSync(process.execPath, [BIN, 'report', file, '--out', out, ...extra], { encoding: 'utf8' });
  return { ...r, out, file };
}

function expectRefused(r: ReturnType<typeof report>, message: RegExp) {
  expect(r.status).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^moecap: ERR_(CORRUPT_FILE|IO): /);
  expect(r.stderr).toMatch(message);
  expect(fs.existsSync(r.out)).toBe(false);
  expect(fs.readdirSync(dir).filter((f) => f.endsWith('.html') || f.endsWith('.tmp'))).toEqual([]);
}

test('a results file of another schema version', () => {
  const r = report('v2', JSON.stringify({ ...good, schemaVersion: '2.0.0' }));
  expectRefused(r, /v2\.json: schema version "2\.0\.0" is not supported by this report \(it reads 1\.x\.x\)/);
  const r0 = report('v-none', JSON.stringify({ ...good, schemaVersion: undefined }));
  expectRefused(r0, /schema version undefined is not supported/);
});

test('a truncated results file', () => {
  const text = JSON.stringify(good, null, 2);
  const r = report('truncated', text.slice(0, Math.floor(text.length / 2)));
  expectRefused(r, /truncated\.json: not valid JSON, truncated or corrupt/);
});

test('an empty file', () => {
  expectRefused(report('empty-file', ''), /empty-file\.json: the file is empty/);
});

test('an empty sweep', () => {
  const r = report('no-configs', JSON.stringify({ ...good, configs: [] }));
  expectRefused(r, /the sweep is empty \(no configs\): nothing to report/);
});

test('a file that does not match the results schema names the field', () => {
  const configs = (good.configs as Record<string, unknown>[]).map((c) => ({ ...c }));
  delete configs[1].tokensPerSecond;
  const r = report('missing', JSON.stringify({ ...good, configs }));
  expectRefused(r, /missing\.json: does not match schema\/results\.schema\.json \(\/configs\/1 must have required property 'tokensPerSecond'/);
  expectRefused(report('array', '[1, 2]'), /array\.json: expected a JSON object \(a moecap results file\)/);
});

test('a folder without results.json, and a path that does not exist', () => {
  const empty = fs.mkdtempSync(path.join(dir, 'run-'));
  const r1 = spawnSync(process.execPath, [BIN, 'report', empty], { encoding: 'utf8' });
  expect(r1.status).toBe(1);
  expect(r1.stderr).toMatch(/folder has no results\.json/);
  expect(fs.readdirSync(empty)).toEqual([]);
  const r2 = spawnSync(process.execPath, [BIN, 'report', path.join(dir, 'nope.json')], { encoding: 'utf8' });
  expect(r2.status).toBe(1);
  expect(r2.stderr).toMatch(/nope\.json: no such file or folder/);
});

test('no argument or an unknown option is a usage error', () => {
  const r = spawnSync(process.execPath, [BIN, 'report'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/report needs one results\.json file or run folder/);
  const r2 = spawnSync(process.execPath, [BIN, 'report', 'x.json', '--bogus'], { encoding: 'utf8' });
  expect(r2.status).toBe(2);
  expect(r2.stderr).toMatch(/unknown option --bogus/);
});

test('an output folder that cannot be written leaves nothing behind', async () => {
  const run = writeResults(good);
  try {
    // Errors crossing jest's vm realm fail instanceof checks: compare name and message.
    await expect(writeReport(run, path.join(run, 'missing-dir', 'r.html'))).rejects.toMatchObject({
      name: 'ReportInputError',
      message: expect.stringMatching(/^cannot write .*r\.html: ENOENT/),
    });
    expect(fs.readdirSync(run)).toEqual(['results.json']);
  } finally {
    fs.rmSync(run, { recursive: true, force: true });
  }
});

test('an existing report is replaced whole, never left half-written', async () => {
  const run = writeResults(good);
  try {
    const out = path.join(run, 'report.html');
    fs.writeFileSync(out, 'old');
    fs.writeFileSync(path.join(run, 'results.json'), '{"schemaVersion": "1.0.0", "configs": [');
    await expect(writeReport(run)).rejects.toMatchObject({ name: 'ReportInputError' });
    expect(fs.readFileSync(out, 'utf8')).toBe('old');
  } finally {
    fs.rmSync(run, { recursive: true, force: true });
  }
});
