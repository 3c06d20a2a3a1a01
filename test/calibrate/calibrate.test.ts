// `moecap calibrate`: measured ceilings saved as a machine profile, reused, and used by runs.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const BIN = path.join(__dirname, '..', '..', 'bin', 'moecap.js');
const small = ['--repeats', '2', '--budget', '2', '--read-bytes', String(64 << 20), '--file-bytes', String(16 << 20)];

test('calibrate measures, saves, reuses; a CAP run then reports S-MBU/S-MFU from it', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-cache-'));
  const env = { ...process.env, XDG_CACHE_HOME: cache };
  try {
    const first = spawnSync(process.execPath, [BIN, 'calibrate', ...small, '--json'], { env, encoding: 'utf8' });
    expect(first.status).toBe(0);
    const p = JSON.parse(first.stdout);
    expect(p.kind).toBe('cpu-measured');
    for (const f of [p.readBandwidth, p.copyBandwidth, p.peakFlops.f32, p.offloadReadBandwidth]) {
      expect(f.value).toBeGreaterThan(0);
      expect(f.repeats).toBeGreaterThanOrEqual(1);
      expect(f.min).toBeLessThanOrEqual(f.value);
      expect(f.max).toBeGreaterThanOrEqual(f.value);
    }
    const files = fs.readdirSync(path.join(cache, 'moecap', 'profiles'));
    expect(files).toHaveLength(1);
    const again = spawnSync(process.execPath, [BIN, 'calibrate'], { env, encoding: 'utf8' });
    expect(again.stdout).toMatch(/saved profile/);
    expect(again.stdout).toContain(p.measuredAt);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-run-'));
    const run = spawnSync(process.execPath, [BIN, 'run', '--preset', 'tiny', '--batch', '1', '--phase', 'decode', '--repeats', '2', '--quiet', '--out', out], {
      env,
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(JSON.stringify(results)).toContain('moecap calibrate');
    fs.rmSync(out, { recursive: true, force: true });
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

test('a missing offload folder is one clear line and a non-zero exit', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-cache-'));
  try {
    const r = spawnSync(process.execPath, [BIN, 'calibrate', ...small, '--offload-dir', '/nonexistent/dir'], {
      env: { ...process.env, XDG_CACHE_HOME: cache },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/offload folder '\/nonexistent\/dir' is not a directory/);
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
