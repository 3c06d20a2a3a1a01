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

/** The addon's counters around a sleep of `ms`, in a child whose loader finds the stand-in NVML;
 * `elapsedMs`: wall time from before start() to after stop() (bounds the window from above). */
function countAround(ms: number): { readings: Reading[]; elapsedMs: number } {
  const script = `const a = require('node-gyp-build')(${JSON.stringify(ROOT)});
    const c = new a.NativeCounters();
    const t0 = performance.now(); c.start();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${ms});
    const readings = c.stop();
    process.stdout.write(JSON.stringify({ readings, elapsedMs: performance.now() - t0 }));`;
  const env = { ...process.env, LD_LIBRARY_PATH: [tmp, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8', cwd: ROOT }));
}

(haveCc ? describe : describe.skip)('NVML counters (stand-in driver library)', () => {
  beforeAll(() => {
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', path.join(tmp, 'libnvidia-ml.so.1'), path.join(ROOT, 'cuda', 'test', 'fake_libnvml.c')]);
  });

  test('a 30 ms window is not measured: gpuEnergy unavailable with the reason; power, clock and memory are read', () => {
    const r = countAround(30).readings;
    const energy = r.find((c) => c.name === 'gpuEnergy:0')!;
    expect(energy.available).toBe(false);
    expect(energy.reason).toMatch(/^a 0\.\d{3} s window is shorter than 1 s: NVML's energy counter is refreshed at driver intervals/);
    expect(Number(/^a (\S+) s/.exec(energy.reason!)![1])).toBeGreaterThanOrEqual(0.03);
    const power = r.find((c) => c.name === 'gpuPower:0')!;
    expect(power).toMatchObject({ available: true, unit: 'W', value: 487.25 });
    expect(r.find((c) => c.name === 'gpuSmClock:0')).toMatchObject({ available: true, value: 1980, source: 'nvml:0 (Fake NVML GPU)' });
    expect(r.find((c) => c.name === 'gpuMemoryUsed:0')).toMatchObject({ available: true, value: 2 ** 30 });
    expect(nvmlEnergy(r as Counter[])).toBeNull();
  });

  test('a 1.25 s window is measured: the counter difference, 50 J per 100 ms refresh', () => {
    const { readings: r, elapsedMs } = countAround(1250);
    const energy = r.find((c) => c.name === 'gpuEnergy:0')!;
    expect(energy).toMatchObject({ available: true, unit: 'J', source: 'nvml:0 (Fake NVML GPU)' });
    // Whole refreshes of 50 J: at least the 12 inside any 1.25 s, at most those of the elapsed time
    // (a loaded machine oversleeps) plus the one either end may catch.
    expect(energy.value! % 50).toBe(0);
    expect(energy.value).toBeGreaterThanOrEqual(600);
    expect(energy.value).toBeLessThanOrEqual(50 * (Math.ceil(elapsedMs / 100) + 1));
    expect(nvmlEnergy(r as Counter[])).toMatchObject({ joules: energy.value });
  });
});
