// The programmatic API: run(plan, { onProgress }) resolves to the results object.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { defaultProfilePath, machineKey, type CpuMeasuredProfile } from '../../lib/cap/hardware';
import { run, type Progress } from '../../lib/cap/runner';
import { validateResults } from '../../lib/cap/results';

const TINY = { presets: ['tiny'], layers: [1], seqLen: [8], steps: [2], repeats: 2, calibrateIfMissing: false };

test('resolves to schema-valid results and reports progress in order', async () => {
  const seen: Progress[] = [];
  const r = await run({ ...TINY, batch: [1, 2], phases: ['prefill'] }, { onProgress: (p) => seen.push(p) });
  expect(validateResults(r)).toEqual([]);
  expect(r.status).toBe('complete');
  expect(r.configs.map((c) => c.tokensPerPass)).toEqual([8, 16]);
  const stages = seen.filter((p) => p.configIndex === 0).map((p) => p.stage);
  expect(stages[0]).toBe('build');
  expect(stages).toContain('warmup');
  expect(stages).toContain('fidelity');
  expect(stages[stages.length - 1]).toBe('done');
  // the second config reuses the layers: no build stage
  expect(seen.filter((p) => p.configIndex === 1).map((p) => p.stage)).not.toContain('build');
  const last = seen[seen.length - 1];
  expect(last).toMatchObject({ configIndex: 1, configCount: 2, stage: 'done', etaSeconds: 0 });
  // counters: measured ones carry a source; the rest say why they are unavailable
  const counters = r.configs[0].counters;
  expect(Array.isArray(counters)).toBe(true);
  for (const c of counters as Array<Record<string, unknown>>) expect(c.available ? typeof c.source : typeof c.reason).toBe('string');
});

test('an aborted run resolves as interrupted with the configs it finished', async () => {
  const ac = new AbortController();
  const r = await run(
    { ...TINY, batch: [1, 2, 3], phases: ['decode'] },
    {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage === 'done' && p.configIndex === 0) ac.abort();
      },
    },
  );
  expect(r.status).toBe('interrupted');
  expect(r.configs).toHaveLength(1);
  expect(validateResults(r)).toEqual([]);
});

test('budget bounds the repeats', async () => {
  const r = await run({ ...TINY, phases: ['prefill'], repeats: 100000, budgetSeconds: 0.2 });
  expect(r.configs[0].samples).toBeGreaterThanOrEqual(1);
  expect(r.configs[0].samples).toBeLessThan(100000);
});

describe('peaks from a measured profile, price overrides', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-prof-'));
  afterAll(() => fs.rmSync(dir, { recursive: true }));
  const fig = (value: number, unit: string) => ({ value, unit, repeats: 5, spread: 0.02 });
  const profile: CpuMeasuredProfile = {
    kind: 'cpu-measured',
    key: 'test-box',
    cpuModel: 'Test CPU',
    cores: 2,
    memoryBytes: 1e10,
    isa: 'avx512',
    measuredAt: '2026-11-28T12:00:00Z',
    readBandwidth: fig(3.3e10, 'B/s'),
    peakFlops: { f32: fig(2.1e11, 'FLOP/s') },
  };
  test('S-MBU/S-MFU use the measured peaks and say so; bf16 without a measured peak is unavailable', async () => {
    const f = path.join(dir, 'profile.json');
    fs.writeFileSync(f, JSON.stringify(profile));
    const prices = path.join(dir, 'prices.json');
    fs.writeFileSync(prices, JSON.stringify({ usdPerKWh: 0, cpuPerCore: { priceUsd: 100, powerW: 0, source: 'test' }, dramPerGB: { priceUsd: 0, powerW: 0 } }));
    const r = await run({ presets: ['tiny'], layers: [1], phases: ['decode'], steps: [2], repeats: 2, dtypes: ['f32', 'bf16'], hardwareProfile: f, prices });
    expect(r.device.kind).toBe('cpu');
    expect(r.projected).toBeNull();
    expect(r.peaks).toMatchObject({ kind: 'measured', name: 'test-box', memoryBandwidth: 3.3e10 });
    const [f32, bf16] = r.configs;
    // S-MBU against the read bandwidth measured around the config; the profile's figure kept for comparison
    expect(f32.smbu).toMatchObject({
      peaks: expect.stringMatching(/^read bandwidth measured around this config/),
      calibrated: { peakBandwidth: 3.3e10, peaks: expect.stringMatching(/^measured: test-box/) },
    });
    expect(f32.smfu).toMatchObject({ peakFlops: 2.1e11, peakDtype: 'f32' });
    if ('value' in f32.smbu && f32.smbu.bandwidthNow) {
      expect(f32.smbu.peakBandwidth).toBe(Math.max(f32.smbu.bandwidthNow.before, f32.smbu.bandwidthNow.after));
      expect(f32.smbu.value).toBeCloseTo(f32.smbu.bytesPerSample / f32.timing.passSeconds.median / f32.smbu.peakBandwidth, 12);
      expect(f32.smbu.calibrated!.value).toBeCloseTo(f32.smbu.bytesPerSample / f32.timing.passSeconds.median / 3.3e10, 12);
    } else throw new Error('expected S-MBU against the bandwidth measured around the config');
    expect(f32.achieved.bytesPerSecond).toBeCloseTo(f32.smbu.bytesPerSample / f32.timing.passSeconds.median, 3);
    expect(bf16.smfu).toEqual({ available: false, reason: 'test-box gives no bf16 peak' });
    // cost by hand: 2 cores × $100 over 3 years, no energy price
    if ('usdPer1MTokens' in f32.cost) expect(f32.cost.usdPer1MTokens).toBeCloseTo(((200 / (3 * 8760)) * (1e6 / f32.tokensPerSecond)) / 3600, 12);
    expect(r.prices.cpuPerCore.source).toBe('test');
  });
  test('bad profile and price files are input errors', async () => {
    const f = path.join(dir, 'bad.json');
    fs.writeFileSync(f, '{"kind":"gpu"}');
    await expect(run({ presets: ['tiny'], hardwareProfile: f })).rejects.toThrow(/is not a cpu-measured profile/);
    fs.writeFileSync(f, '{"gpu": 3}');
    await expect(run({ presets: ['tiny'], prices: f })).rejects.toThrow(/price override 'gpu' must be an object/);
  });
  test('profile location is keyed by machine', () => {
    expect(machineKey('AMD EPYC 9R45 (Zen 5)', 2, 24 * 1024 ** 3)).toBe('amd-epyc-9r45-zen-5-2c-24g');
    expect(defaultProfilePath('k', { XDG_CACHE_HOME: '/c' }, '/home/u')).toBe('/c/moecap/profiles/k.json');
    expect(defaultProfilePath('k', {}, '/home/u')).toBe('/home/u/.cache/moecap/profiles/k.json');
  });
});
