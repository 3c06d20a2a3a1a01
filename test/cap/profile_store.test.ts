// The calibration profile on disk: a truncated or corrupt one is named (with --recalibrate as the
// way out) instead of a bare SyntaxError in every later run, and a profile that cannot be saved
// where asked is kept elsewhere and printed, never thrown away.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolvePeaks } from '../../lib/cap/peaks';
import { profilePath } from '../../lib/cap/calibrate';
import { main } from '../../lib/cli/main';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-profile-'));
const savedXdg = process.env.XDG_CACHE_HOME;
beforeAll(() => {
  process.env.XDG_CACHE_HOME = path.join(tmp, 'cache');
});
afterAll(() => {
  if (savedXdg === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedXdg;
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function cli(args: string[]) {
  let stdout = '',
    stderr = '';
  const status = await main(
    args,
    (s) => void (stdout += s),
    (s) => void (stderr += s),
  );
  return { status, stdout, stderr };
}

test('a truncated cached profile: runs go on with peaks unavailable, naming the file and --recalibrate', () => {
  const file = profilePath();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '{"kind": "cpu-measured", "readBand');
  const peaks = resolvePeaks(null, null) as { available: boolean; reason: string };
  expect(peaks.available).toBe(false);
  expect(peaks.reason).toContain(file);
  expect(peaks.reason).toMatch(/moecap calibrate --recalibrate/);
});

test('a truncated --hardware-profile is ERR_CORRUPT_FILE naming the file, not a bare SyntaxError', () => {
  const file = path.join(tmp, 'given.json');
  fs.writeFileSync(file, '{"kind": "cpu-me');
  expect(() => resolvePeaks(null, file)).toThrow(expect.objectContaining({ code: 'ERR_CORRUPT_FILE', message: expect.stringContaining(file) }));
  expect(() => resolvePeaks(null, file)).toThrow(/--recalibrate/);
});

test('a profile whose figure fields have the wrong type is ERR_CORRUPT_FILE (a nested spread once overflowed the stack)', () => {
  const file = path.join(tmp, 'nested.json');
  const fig = (value: number) => ({ value, unit: 'B/s', repeats: 3, spread: 0.1, statistic: 'best of 3 windows' });
  const p = {
    kind: 'cpu-measured',
    key: 'k',
    cpuModel: 'cpu',
    measuredAt: new Date().toISOString(),
    readBandwidth: fig(5e10),
    peakFlops: { f32: fig(4e11), int8: fig(1.6e12) },
  };
  const nested = '['.repeat(20000) + '0.1' + ']'.repeat(20000);
  fs.writeFileSync(file, JSON.stringify(p).replace('"spread":0.1,"statistic":"best of 3 windows"}}}', `"spread":${nested},"statistic":"best of 3 windows"}}}`));
  expect(() => resolvePeaks(null, file)).toThrow(
    expect.objectContaining({ code: 'ERR_CORRUPT_FILE', message: expect.stringMatching(/nested\.json.*peakFlops\.int8 must be a measured figure/) }),
  );
});

test('moecap calibrate with a truncated saved profile names it and suggests --recalibrate', async () => {
  const file = path.join(tmp, 'trunc.json');
  fs.writeFileSync(file, '{"kind": "cpu-measured", "peak');
  const r = await cli(['calibrate', '--profile', file]);
  expect(r.stderr).toMatch(/^moecap: ERR_CORRUPT_FILE: .*trunc\.json.*--recalibrate/);
  expect(r.stderr).not.toMatch(/SyntaxError/);
  expect(r.status).toBe(1);
});

test('a profile that cannot be saved where asked is kept in the temp folder and printed', async () => {
  const blocker = path.join(tmp, 'not-a-folder');
  fs.writeFileSync(blocker, 'x');
  const file = path.join(blocker, 'profile.json');
  const r = await cli(['calibrate', '--profile', file, '--repeats', '1', '--read-bytes', String(16 << 20), '--file-bytes', String(8 << 20), '--json']);
  expect(r.stderr).toMatch(/^moecap calibrate: ERR_IO: cannot save the profile to .*not-a-folder\/profile\.json .*kept in (\S+\.json)/m);
  const kept = /kept in (\S+\.json)/.exec(r.stderr)![1];
  const saved = JSON.parse(fs.readFileSync(kept, 'utf8'));
  expect(saved.kind).toBe('cpu-measured');
  expect(JSON.parse(r.stdout).readBandwidth.value).toBe(saved.readBandwidth.value);
  expect(r.status).toBe(1);
  fs.rmSync(kept, { force: true });
}, 120_000);
