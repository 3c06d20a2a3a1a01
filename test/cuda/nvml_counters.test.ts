// GPU energy, power, clock and memory from NVML, through a stand-in libnvidia-ml.so.1
// (cuda/test/fake_libnvml.c: an energy counter refreshed every 100 ms): a window too short for the
// counter's refresh is not measured (gpuEnergy unavailable, saying why; the cost model then takes
// the TDP model), a long one is; every other reading is the value the library returned.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nvmlEnergy } from '../../lib/cap/energy';
import type { Counter } from '../../lib/cap/results';

const ROOT = path.join(__dirname, '..', '..');
const haveCc = process.platform === 'linux' && spawnSync('sh', ['-c', 'command -v cc']).status === 0;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-nvml-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Reading = { name: string; available: boolean; value?: number; unit?: string; source?: string; reason?: string };

/** The addon's counters around a sleep of `ms`, in a child whose loader finds the stand-in NVML. */
function countAround(ms: number): Reading[] {
  const script = `const a = require('node-gyp-build')(${JSON.stringify(ROOT)});
    const c = new a.NativeCounters(); c.start();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${ms});
    process.stdout.write(JSON.stringify(c.stop()));`;
  const env = { ...process.env, LD_LIBRARY_PATH: [tmp, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8', cwd: ROOT }));
}

(haveCc ? describe : describe.skip)('NVML counters (stand-in driver library)', () => {
  beforeAll(() => {
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', path.join(tmp, 'libnvidia-ml.so.1'), path.join(ROOT, 'cuda', 'test', 'fake_libnvml.c')]);
  });

  test('a 30 ms window is not measured: gpuEnergy unavailable with the reason; power, clock and memory are read', () => {
    const r = countAround(30);
    const energy = r.find((c) => c.name === 'gpuEnergy:0')!;
    expect(energy.available).toBe(false);
    expect(energy.reason).toMatch(/^a 0\.0[3-9]\d s window is shorter than 1 s: NVML's energy counter is refreshed at driver intervals/);
    const power = r.find((c) => c.name === 'gpuPower:0')!;
    expect(power).toMatchObject({ available: true, unit: 'W', value: 487.25 });
    expect(r.find((c) => c.name === 'gpuSmClock:0')).toMatchObject({ available: true, value: 1980, source: 'nvml:0 (Fake NVML GPU)' });
    expect(r.find((c) => c.name === 'gpuMemoryUsed:0')).toMatchObject({ available: true, value: 2 ** 30 });
    expect(nvmlEnergy(r as Counter[])).toBeNull();
  });

  test('a 1.25 s window is measured: the counter difference, 50 J per 100 ms refresh', () => {
    const r = countAround(1250);
    const energy = r.find((c) => c.name === 'gpuEnergy:0')!;
    expect(energy).toMatchObject({ available: true, unit: 'J', source: 'nvml:0 (Fake NVML GPU)' });
    // 12 or 13 refreshes fall inside 1.25 s (plus the child's few ms around the sleep).
    expect([600, 650, 700]).toContain(energy.value);
    expect(nvmlEnergy(r as Counter[])).toMatchObject({ joules: energy.value });
  });
});
