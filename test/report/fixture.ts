// A results.json made by a real tiny CAP run: the runner (lib/cap/runner.ts `run`) on the tiny
// preset at a few batches, both phases and three dtypes. `moecap calibrate` does not exist yet, so
// the peaks come from a profile this file measures with the engine's own layer passes (best
// bytes/s of an all-experts decode pass; best FLOP/s of a compute-bound prefill pass per dtype —
// lower bounds on the true peaks), and the results say so instead of "moecap calibrate".
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createMoeLayer, systemInfo, type DType } from '../../lib/moe_layer';
import { run } from '../../lib/cap/runner';
import type { RunPlan } from '../../lib/cap/plan';
import type { CpuMeasuredProfile, MeasuredFigure } from '../../lib/cap/hardware';
import { gaussian } from '../helpers';

const LABEL = 'report test fixture: peaks from moecap layer passes (lower bounds), not moecap calibrate';

function figure(values: number[], unit: string): MeasuredFigure {
  const s = [...values].sort((a, b) => a - b);
  const best = s[s.length - 1];
  return { value: best, unit, repeats: values.length, spread: (best - s[0]) / best };
}

/** Best achieved rate over a few passes of one layer: bytes/s (all experts read) or FLOP/s. */
async function bestRate(
  dtype: DType,
  shape: { hidden: number; intermediate: number; experts: number; topK: number },
  T: number,
  what: 'bytes' | 'flops',
): Promise<number[]> {
  const layer = await createMoeLayer({ ...shape, dtype, threads: systemInfo().hardwareThreads, weights: { seed: 3 } });
  try {
    const x = gaussian(T * shape.hidden, 11);
    await layer.forward(x);
    const rates: number[] = [];
    for (let r = 0; r < 8; r++) {
      const s = (await layer.forward(x)).stats;
      rates.push((what === 'bytes' ? s.expertBytes + s.routerBytes : s.flops) / (s.timeNs / 1e9));
    }
    return rates;
  } finally {
    layer.close();
  }
}

let profileCache: string | null = null;

/** A cpu-measured hardware profile for this machine, measured once per test process. */
export async function fixtureProfile(dtypes: Array<'f32' | 'bf16' | 'int8'> = ['f32', 'bf16']): Promise<string> {
  if (profileCache) return profileCache;
  // 16 experts of 3·1024·1024 f32 (12 MiB each, 192 MiB in all): one token routed to all 16 reads
  // every expert once (matrix-vector products: memory-bound).
  const bw = await bestRate('f32', { hidden: 1024, intermediate: 1024, experts: 16, topK: 16 }, 1, 'bytes');
  // Compute: the best FLOP/s over a few prefill shapes (the fast shape differs between dtypes;
  // the large one is only affordable for f32).
  const shapes = [
    { hidden: 64, intermediate: 32, experts: 8, topK: 2, T: 512 },
    { hidden: 128, intermediate: 128, experts: 2, topK: 2, T: 256 },
    { hidden: 512, intermediate: 512, experts: 2, topK: 2, T: 512, f32Only: true },
  ];
  const peakFlops: CpuMeasuredProfile['peakFlops'] = {};
  for (const d of dtypes) {
    const rates: number[] = [];
    for (const { T, f32Only, ...shape } of shapes) if (!f32Only || d === 'f32') rates.push(...(await bestRate(d, shape, T, 'flops')));
    peakFlops[d] = figure(rates, 'FLOP/s');
  }
  const sys = systemInfo();
  const profile: CpuMeasuredProfile = {
    kind: 'cpu-measured',
    key: 'report-test-fixture',
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown CPU',
    cores: sys.hardwareThreads,
    memoryBytes: sys.totalMemory,
    isa: sys.bestIsa,
    measuredAt: new Date().toISOString(),
    readBandwidth: figure(bw, 'B/s'),
    peakFlops,
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-profile-'));
  const file = path.join(dir, 'profile.json');
  fs.writeFileSync(file, JSON.stringify(profile, null, 2));
  return (profileCache = file);
}

/** Removes the measured profile (call from afterAll). */
export function removeFixtureProfile(): void {
  if (profileCache) fs.rmSync(path.dirname(profileCache), { recursive: true, force: true });
  profileCache = null;
}

export const FIXTURE_PLAN: Partial<RunPlan> = {
  presets: ['tiny'],
  phases: ['decode', 'prefill'],
  batch: [1, 4, 16, 64],
  seqLen: [8],
  steps: [2],
  dtypes: ['f32', 'bf16'],
  repeats: 3,
  warmup: 1,
  calibrateIfMissing: false,
};

/** Runs the CAP runner into a fresh temporary folder (results.json and MoE-CAP files); returns the folder. */
export async function runFixture(plan: Partial<RunPlan> = {}): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-report-'));
  await run({ ...FIXTURE_PLAN, hardwareProfile: await fixtureProfile(), ...plan }, { outDir: dir });
  // Say where the peaks came from: the runner names every measured profile "moecap calibrate".
  const file = path.join(dir, 'results.json');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/moecap calibrate on /g, `${LABEL}, on `));
  return dir;
}

export function readResults(dir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
}

/** Writes a (modified) results object into a fresh folder; returns the folder. */
export function writeResults(results: object): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-report-'));
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(results, null, 2));
  return dir;
}
