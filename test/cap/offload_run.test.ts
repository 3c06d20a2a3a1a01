// `moecap run --offload`: the CAP run with experts streamed from a weights file.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { validateResults } from '../../lib/cap/results';

const LAUNCH = path.join(__dirname, 'launch.js');

test('offloaded configs report hit rate and tier bandwidth, with the same fidelity as all-resident', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-off-'));
  try {
    const r = spawnSync(
      process.execPath,
      [
        LAUNCH,
        'run',
        '--preset',
        'tiny',
        '--phase',
        'decode',
        '--batch',
        '1,4',
        '--offload',
        '1,0.25',
        '--offload-policy',
        'lfu',
        '--repeats',
        '3',
        '--quiet',
        '--hardware',
        'h100-sxm',
        '--out',
        out,
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/hit rate\s+tier GB\/s/);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(() => validateResults(results)).not.toThrow();
    const off = results.configs.filter((c: any) => c.options.residentFraction === 0.25);
    const res = results.configs.filter((c: any) => c.options.residentFraction === 1);
    expect(off).toHaveLength(2);
    for (const c of res) expect(c.offload.available).toBe(false);
    for (const c of off) {
      expect(c.id).toMatch(/-res0\.25-/);
      expect(c.offload.cacheExperts).toBe(2); // 25 % of 8 experts
      expect(c.offload.policy).toBe('lfu');
      expect(c.offload.bytesMoved).toBeGreaterThan(0);
      expect(c.offload.hitRate).toBeGreaterThanOrEqual(0);
      expect(c.offload.hitRate).toBeLessThanOrEqual(1);
      expect(c.offload.tierBandwidth).toBeGreaterThan(0);
      // A datasheet names no offload-folder bandwidth: utilisation is null with the reason.
      expect(c.offload.value).toBeNull();
      expect(c.offload.valueReason).toMatch(/moecap calibrate/);
      // Offloading changes where the weights come from, not the arithmetic.
      const resident = res.find((x: any) => x.options.batch === c.options.batch);
      expect(c.fidelity.relativeL2).toBe(resident.fidelity.relativeL2);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('a resident fraction outside (0, 1] is one clear line and exit 2', () => {
  const r = spawnSync(process.execPath, [LAUNCH, 'run', '--preset', 'tiny', '--offload', '1.5'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/resident fraction\) must be in \(0, 1\], got 1.5/);
});
