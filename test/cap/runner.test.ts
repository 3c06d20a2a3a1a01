// The programmatic API: run(plan, { onProgress }) resolves to the results object.
import { run, type Progress } from '../../lib/cap/runner';
import { validateResults } from '../../lib/cap/results';

const TINY = { presets: ['tiny'], layers: [1], seqLen: [8], steps: [2], repeats: 2 };

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
  const r = await run({ ...TINY, batch: [1, 2, 3] , phases: ['decode'] }, {
    signal: ac.signal,
    onProgress: (p) => { if (p.stage === 'done' && p.configIndex === 0) ac.abort(); },
  });
  expect(r.status).toBe('interrupted');
  expect(r.configs).toHaveLength(1);
  expect(validateResults(r)).toEqual([]);
});

test('budget bounds the repeats', async () => {
  const r = await run({ ...TINY, phases: ['prefill'], repeats: 100000, budgetSeconds: 0.2 });
  expect(r.configs[0].samples).toBeGreaterThanOrEqual(1);
  expect(r.configs[0].samples).toBeLessThan(100000);
});
