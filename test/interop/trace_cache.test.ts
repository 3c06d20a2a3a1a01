import * as fs from 'fs';
import { execFileSync, spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { replayLayer, REPLAY_POLICIES } from '../../lib/interop/cache_replay';
import { importTrace } from '../../lib/interop/trace_import';
import { TraceSpill } from '../../lib/interop/trace_spill';
import { traceStats, gini, entropyBits } from '../../lib/interop/trace_stats';
import { traceCommand } from '../../lib/cli/commands/trace';
import { planCacheCommand } from '../../lib/cli/commands/plan_cache';
import { libuvPoolSize, planCache, replayConcurrency } from '../../lib/interop/cache_plan';
import { resolveModel } from '../../lib/interop/model_shape';
import { rng, sampleRouting, zipfWeights } from '../../lib/cap/routing';
import { writeJsonlTrace } from '../trace_files';
import { haveGxx, runNativeTest } from '../native_test';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-interop-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const io = () => {
  const out: string[] = [];
  return { out, io: { out: (s: string) => out.push(s), err: (s: string) => out.push(s) } };
};

// A plain reference LRU over pass sets (the same definition: hits counted at the pass start).
function lruReference(ids: Int32Array, k: number, T: number, cap: number): number {
  const order: number[] = [];
  let hits = 0;
  for (let t0 = 0; t0 < ids.length / k; t0 += T) {
    const need = [...new Set(Array.from(ids.subarray(t0 * k, Math.min(ids.length, (t0 + T) * k))))].sort((a, b) => a - b);
    for (const e of need) if (order.includes(e)) hits++;
    for (const e of need) {
      const i = order.indexOf(e);
      if (i >= 0) order.splice(i, 1);
      order.push(e);
    }
    while (order.length > Math.max(cap, 0)) order.shift();
  }
  return hits;
}

describe('cache replay (native SlotTable policies + Belády)', () => {
  test('Belády >= every policy on every trace, at several capacities and batch sizes', async () => {
    for (const [seed, E, k, skew] of [
      [1, 16, 2, 1.2],
      [2, 64, 8, 0.8],
      [3, 37, 3, 0],
      [4, 8, 2, 2],
    ] as const) {
      const ids = sampleRouting(3000, k, zipfWeights(E, skew), seed);
      for (const T of [1, 4]) {
        const caps = [k, Math.floor(E / 2), E - 1];
        const configs = caps.flatMap((c) => REPLAY_POLICIES.map((p) => ({ capacity: c, policy: p })));
        const r = await replayLayer({ ids, topK: k, experts: E, tokensPerPass: T, staticProfilePasses: 50, configs });
        caps.forEach((c, ci) => {
          const row = r.slice(ci * REPLAY_POLICIES.length, (ci + 1) * REPLAY_POLICIES.length);
          const bel = row[REPLAY_POLICIES.indexOf('belady')];
          for (const x of row) {
            expect(x.hits + x.misses).toBe(bel.hits + bel.misses);
            expect(bel.hits).toBeGreaterThanOrEqual(x.hits);
            expect(x.loads).toBe(x.misses);
          }
        });
      }
    }
  });

  test('LRU matches a plain reference LRU, full capacity only misses the first touch', async () => {
    const E = 12,
      k = 3;
    const ids = sampleRouting(500, k, zipfWeights(E, 1), 9);
    for (const cap of [3, 5, 8]) {
      const [lru] = await replayLayer({ ids, topK: k, experts: E, configs: [{ capacity: cap, policy: 'lru' }] });
      expect(lru.hits).toBe(lruReference(ids, k, 1, cap));
    }
    const full = await replayLayer({ ids, topK: k, experts: E, configs: REPLAY_POLICIES.map((p) => ({ capacity: E, policy: p })) });
    const firstTouch = new Set(Array.from(ids)).size;
    for (const x of full) expect(x.misses).toBe(firstTouch);
  });

  test('every count is the one recorded before the replay was made faster (seeded routings, lists and tree)', async () => {
    // Capacities up to E: lfru keeps its candidates in a bit mask up to 64 slots, in the tree above.
    const pinned = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'replay_counts.json'), 'utf8')) as {
      cases: Array<{ seed: number; E: number; k: number; skew: number; tokens: number; T: number; counts: Array<[number, string, ...number[]]> }>;
    };
    expect(pinned.cases.length).toBe(8);
    for (const c of pinned.cases) {
      const ids = sampleRouting(c.tokens, c.k, zipfWeights(c.E, c.skew), c.seed);
      const configs = c.counts.map(([capacity, policy]) => ({ capacity, policy: policy as (typeof REPLAY_POLICIES)[number] }));
      expect(configs.some((x) => x.capacity > 64 && x.policy === 'lfru') || c.E <= 64).toBe(true);
      const r = await replayLayer({ ids, topK: c.k, experts: c.E, tokensPerPass: c.T, staticProfilePasses: 50, configs, threads: 2 });
      const got = r.map((x, i) => [configs[i].capacity, configs[i].policy, x.passes, x.hits, x.misses, x.loads, x.evictions]);
      expect(got).toEqual(c.counts);
    }
  });

  // Belády at every capacity and lru/lfu/lfru at capacities no pass exceeds come from one stack walk
  // per policy, static and every policy in waves from the slot table's rule (stream_replay.cc):
  // the C++ test checks each config's counts against its own SlotTable replay.
  (haveGxx ? test : test.skip)(
    'stack walks and streaming replays give the counts of one table replay per capacity (test/native/stack_replay_test.cc)',
    () => {
      const sources = [
        'test/native/stack_replay_test.cc',
        ...['stack_replay', 'belady_replay', 'stream_replay', 'cache_replay', 'slot_table'].map((f) => `native/core/offload/${f}.cc`),
      ];
      const out = runNativeTest('stack_replay_test', sources, [], ['-pthread']);
      expect(out).toMatch(/all \d+ checks passed/);
      const compared = /stack == one replay per capacity: (\d+) \(routing, policy, capacity\) counts over 12 shapes x 3 seeds/.exec(out);
      expect(Number(compared?.[1])).toBeGreaterThan(7000);
      const streamed = /streaming == SlotTable: (\d+) \(routing, policy, profile, capacity\) counts/.exec(out);
      expect(Number(streamed?.[1])).toBeGreaterThan(4000);
      expect(out).toContain('ok   replay_layer: 35 configs in the order asked, stacks and streaming, 1 and 3 threads');
      expect(out).toContain('ok   refusals:');
    },
    120_000,
  );

  test('bad ids and options are clear errors', async () => {
    await expect(replayLayer({ ids: new Int32Array([0, 9]), topK: 2, experts: 8, configs: [{ capacity: 2, policy: 'lru' }] })).rejects.toThrow(
      /expert id 9 at token 0 is out of range \[0, 8\)/,
    );
    await expect(replayLayer({ ids: new Int32Array([0, 1, 2]), topK: 2, experts: 8, configs: [] })).rejects.toThrow(/multiple of topK/);
    await expect(replayLayer({ ids: new Int32Array([0, 1]), topK: 2, experts: 8, configs: [{ capacity: 2, policy: 'mru' as never }] })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
  });
});

describe('trace import from vLLM and SGLang shapes', () => {
  const L = 3,
    k = 2,
    E = 8;
  const layers = [0, 1, 2].map((l) => sampleRouting(10, k, zipfWeights(E, 1), 100 + l));
  const at = (l: number, t: number) => Array.from(layers[l].subarray(t * k, t * k + k));

  test('vLLM: routed_experts [tokens][layers][k] per request, requests concatenated', async () => {
    const f = path.join(dir, 'vllm.jsonl');
    const req = (t0: number, n: number) => ({
      request_id: `r${t0}`,
      routed_experts: Array.from({ length: n }, (_, i) => Array.from({ length: L }, (_, l) => at(l, t0 + i))),
    });
    fs.writeFileSync(f, JSON.stringify(req(0, 4)) + '\n' + JSON.stringify(req(4, 6)) + '\n');
    const out = path.join(dir, 'vllm.trace.jsonl');
    const s = importTrace(f, out, { format: 'vllm', experts: E, topK: k });
    expect(s).toMatchObject({ records: 2, tokens: 10, layers: L, topK: k, lines: 30 });
    const tr = await TraceSpill.read(out, { experts: E });
    try {
      for (let l = 0; l < L; l++) expect(Array.from(tr.layer(l))).toEqual(Array.from(layers[l]));
    } finally {
      tr.close();
    }
  });

  test('SGLang per_token records: [layers][tokens][8] padded with -1, physical→logical map', async () => {
    const f = path.join(dir, 'sglang.jsonl');
    const phys = (e: number) => (e + 3) % E; // physical id p holds logical map[p]
    const map = Array.from({ length: L }, () => Array.from({ length: E }, (_, p) => (p - 3 + E) % E));
    const rec = (t0: number, n: number, extra: object = {}) => ({
      forward_pass_id: t0,
      rank: 0,
      gatherer_key: 'primary',
      forward_mode: 1,
      input_ids: [],
      positions: [],
      extend_seq_lens: [n],
      topk_ids_of_layer: Array.from({ length: L }, (_, l) => Array.from({ length: n }, (_, i) => [...at(l, t0 + i).map(phys), -1, -1, -1, -1, -1, -1])),
      ...extra,
    });
    fs.writeFileSync(f, [JSON.stringify({ last_physical_to_logical_map: map }), JSON.stringify(rec(0, 7)), JSON.stringify(rec(7, 3))].join('\n'));
    const out = path.join(dir, 'sglang.trace.jsonl');
    expect(importTrace(f, out, { format: 'sglang', experts: E })).toMatchObject({ records: 2, tokens: 10, layers: L, topK: k });
    const tr = await TraceSpill.read(out);
    try {
      for (let l = 0; l < L; l++) expect(Array.from(tr.layer(l))).toEqual(Array.from(layers[l]));
    } finally {
      tr.close();
    }
  });

  test('hostile inputs: one error naming file, line and field; no output left behind', () => {
    const cases: Array<[string, string, string, RegExp]> = [
      [
        'vllm',
        JSON.stringify({
          routed_experts: [
            [
              [0, 1],
              [2, 3],
              [4, 5],
            ],
          ],
        }) + '\n{"routed_experts": [[[0,1],[2,',
        'vllm',
        /line 2: not valid JSON/,
      ],
      [
        'vllm',
        JSON.stringify({
          routed_experts: [
            [
              [0, 1],
              [2, 3],
              [4, 9],
            ],
          ],
        }),
        'vllm',
        /line 1 field 'routed_experts\[0\]\[2\]': expert id 9 out of range \[0, 8\)/,
      ],
      [
        'vllm',
        JSON.stringify({
          routed_experts: [
            [
              [0, 1],
              [2, 3],
              [4, 5, 6],
            ],
          ],
        }),
        'vllm',
        /field 'routed_experts\[0\]\[2\]': has 3 expert ids, expected k = 2/,
      ],
      [
        'vllm',
        JSON.stringify({
          routed_experts: [
            [
              [0, 1],
              [2, 3],
            ],
          ],
        }),
        'vllm',
        /has 2 layers, expected 3/,
      ],
      [
        'vllm',
        JSON.stringify({
          routed_experts: [
            [
              [0, '1'],
              [2, 3],
              [4, 5],
            ],
          ],
        }),
        'vllm',
        /expert id "1" is not an integer/,
      ],
      ['sglang', JSON.stringify({ forward_pass_id: 1, global_physical_count: [[1, 2]] }), 'sglang', /per_pass\/stat record/],
      [
        'moecap',
        '{"layer":0,"token":1,"experts":[0,1]}\n{"layer":0,"token":0,"experts":[2,3]}',
        'moecap',
        /line 2 field 'token': token 0 of layer 0 comes after token 1/,
      ],
      ['moecap', '{"layer":-1,"token":0,"experts":[0,1]}', 'moecap', /field 'layer'/],
      ['moecap', '{"layer":0,"token":0,"experts":[1,1]}', 'moecap', /distinct/],
    ];
    cases.forEach(([fmt, body, , re], i) => {
      const f = path.join(dir, `bad${i}.jsonl`),
        out = path.join(dir, `bad${i}.out`);
      fs.writeFileSync(f, body);
      let err: unknown;
      try {
        importTrace(f, out, { format: fmt as 'vllm', experts: 8, layers: fmt === 'moecap' ? undefined : 3 });
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ERR_CORRUPT_FILE' });
      expect(String((err as Error).message)).toMatch(re);
      expect(String((err as Error).message)).toContain(f);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.readdirSync(dir).some((n) => n.startsWith(`bad${i}.out.tmp`))).toBe(false);
    });
  });
});

describe('trace stats', () => {
  test('gini and entropy on hand-computed loads', () => {
    expect(gini([1, 1, 1, 1])).toBeCloseTo(0, 12);
    expect(gini([0, 0, 0, 4])).toBeCloseTo(0.75, 12); // (n-1)/n for one expert taking everything
    expect(entropyBits([1, 1, 1, 1])).toBeCloseTo(2, 12);
    expect(entropyBits([0, 0, 2, 2])).toBeCloseTo(1, 12);
  });

  test('a routing where layer l+1 = layer l + 1 is fully predictable; the CLI prints per layer', async () => {
    const E = 16,
      k = 1,
      n = 400;
    const l0 = sampleRouting(n, k, zipfWeights(E, 1.1), 5);
    const l1 = l0.map((e) => (e + 1) % E);
    const f = path.join(dir, 'pred.jsonl');
    writeJsonlTrace(f, [l0, l1], k);
    const tr = await TraceSpill.read(f, { experts: E });
    try {
      const s = traceStats(tr, { experts: E, batch: 4, window: 100, hotSize: 1 });
      expect(s[0].nextLayerPrecision).toBe(1);
      expect(s[1].nextLayerPrecision).toBeNull();
      expect(s[0].load.reduce((a, b) => a + b, 0)).toBe(n * k);
      expect(s[0].gini).toBeCloseTo(s[1].gini, 12);
    } finally {
      tr.close();
    }
    const o = io();
    expect(await traceCommand.run({ options: { batch: 4, window: 100 }, positional: ['stats', f], given: new Set() }, o.io)).toBe(0);
    expect(o.out.join('')).toMatch(/2 layers, 400 tokens, k = 1/);
  });
});

describe('plan-cache', () => {
  test('the plan sums its layers in layer order, whichever layer finishes first (the same bits every run)', async () => {
    const model = resolveModel(undefined, 'tiny');
    const k = model.topK,
      E = model.experts;
    // Layer 0 is long, the others short: run at once, they finish before it.
    const layers = [30000, 700, 300, 1100].map((n, l) => sampleRouting(n, k, zipfWeights(E, 0.9), 90 + l));
    const trace = {
      file: 'mem',
      layers: layers.length,
      topK: k,
      tokens: layers.map((ids) => ids.length / k),
      maxExpert: E,
      layer: (l: number) => layers[l],
    } as unknown as TraceSpill;
    const inputs = {
      trace,
      model,
      dtype: 'f32',
      capacities: [1, 3, 5],
      policies: [...REPLAY_POLICIES],
      tokensPerPass: 1,
      staticProfilePasses: 20,
      slowTierBandwidth: 1e9,
      memoryBandwidth: null,
      peakFlops: null,
    };
    const one = await planCache({ ...inputs, parallel: 1 });
    const four = await planCache({ ...inputs, parallel: 4 });
    expect(four.rows).toEqual(one.rows);
    const configs = inputs.capacities.flatMap((c) => REPLAY_POLICIES.map((p) => ({ capacity: c, policy: p })));
    const perLayer = await Promise.all(layers.map((ids) => replayLayer({ ids, topK: k, experts: E, staticProfilePasses: 20, configs })));
    one.rows.forEach((row, j) => {
      let loadsPerToken = 0;
      perLayer.forEach((r, l) => (loadsPerToken += r[j].loads / (layers[l].length / k)));
      expect(row.slowBytesPerToken).toBe(loadsPerToken * (model.moeLayers / layers.length) * one.expertBytes);
    });
  });

  test('prints every capacity × policy, Belády on top; times from --slow-bw and a datasheet', async () => {
    const E = 8,
      k = 2;
    const layers = [0, 1].map((l) => sampleRouting(2000, k, zipfWeights(E, 1.2), 40 + l));
    const f = path.join(dir, 'tiny.jsonl');
    writeJsonlTrace(f, layers, k);
    const o = io();
    const rc = await planCacheCommand.run(
      {
        options: {
          preset: 'tiny',
          capacity: [2, 4],
          policy: ['lru', 'lfu', 'lfru', 'static', 'belady'],
          batch: 1,
          dtype: 'f32',
          'static-profile': 100,
          'slow-bw': 10,
          hardware: 'h100-sxm',
        },
        positional: [f],
        given: new Set(),
      },
      o.io,
    );
    expect(rc).toBe(0);
    const text = o.out.join('');
    const rows = text.split('\n').filter((l) => /^\s+\d+\s+(lru|lfu|lfru|static|belady)/.test(l));
    expect(rows).toHaveLength(10);
    for (const cap of ['2', '4']) {
      const rates = rows.filter((r) => r.trim().startsWith(cap + ' ')).map((r) => [r.trim().split(/\s+/)[1], parseFloat(r.trim().split(/\s+/)[2])] as const);
      const bel = rates.find((r) => r[0] === 'belady')![1];
      for (const [, v] of rates) expect(bel).toBeGreaterThanOrEqual(v);
    }
    // Bytes per token: loads × S_e / tokens (f32 tiny expert = 3·64·32·4 B).
    expect(text).toMatch(/expert 0\.02 MB \(f32\)/);
  });

  test('a measured CPU without a bf16 dot: bf16 compute times from its fp32 FMA peak, and the line says so', async () => {
    const E = 8,
      k = 2;
    const f = path.join(dir, 'tiny-bf16.jsonl');
    writeJsonlTrace(
      f,
      [0, 1].map((l) => sampleRouting(500, k, zipfWeights(E, 1.0), 60 + l)),
      k,
    );
    const figure = (value: number, unit: string) => ({ value, unit, repeats: 9, spread: 0.01 });
    const profile = path.join(dir, 'avx2-profile.json');
    fs.writeFileSync(
      profile,
      JSON.stringify({
        kind: 'cpu-measured',
        key: 'avx2-box',
        cpuModel: 'Test CPU',
        cores: 2,
        memoryBytes: 1e10,
        isa: 'avx2',
        measuredAt: new Date().toISOString(),
        readBandwidth: figure(4e10, 'B/s'),
        peakFlops: { f32: figure(2e11, 'FLOP/s'), int8: figure(3.2e11, 'OP/s') },
      }),
    );
    const o = io();
    const options = {
      preset: 'tiny',
      capacity: [4],
      policy: ['lru'],
      batch: 1,
      dtype: 'bf16',
      'static-profile': 10,
      'slow-bw': 10,
      'hardware-profile': profile,
    };
    expect(await planCacheCommand.run({ options, positional: [f], given: new Set() }, o.io)).toBe(0);
    const text = o.out.join('');
    expect(text).toContain('compute side: avx2-box (measured), f32 peak (bf16 widened to fp32 FMAs: no bf16 dot here)');
    const row = text.split('\n').find((l) => /^\s+4\s+lru/.test(l))!;
    // compute ms/token = max(bytes / read bandwidth, FLOPs / fp32 peak): a figure, not n/a.
    expect(row.trim().split(/\s+/)[5]).toMatch(/^\d+\.\d{3}$/);
  });

  test("replays spread over layers first, within libuv's pool and the memory budget", () => {
    const saved = process.env.UV_THREADPOOL_SIZE;
    try {
      process.env.UV_THREADPOOL_SIZE = '16';
      expect(replayConcurrency(16, 61, 15)).toEqual({ layersAtOnce: 16, threadsPerLayer: 1 });
      expect(replayConcurrency(16, 2, 15)).toEqual({ layersAtOnce: 2, threadsPerLayer: 8 });
      expect(replayConcurrency(16, 1, 3)).toEqual({ layersAtOnce: 1, threadsPerLayer: 3 });
      // Four layers of 1 GB fit a 4 GB budget, and share the threads; one too big still runs.
      expect(replayConcurrency(16, 61, 15, 1e9, 4e9)).toEqual({ layersAtOnce: 4, threadsPerLayer: 4 });
      expect(replayConcurrency(16, 61, 15, 8e9, 4e9)).toEqual({ layersAtOnce: 1, threadsPerLayer: 15 });
      // libuv's reading of the variable: atoi, 0 taken as 1, at most 1024.
      for (const [v, n] of [
        ['8', 8],
        ['8 threads', 8],
        ['0', 1],
        ['many', 1],
        ['', 1],
        ['5000', 1024],
      ] as const) {
        process.env.UV_THREADPOOL_SIZE = v;
        expect(libuvPoolSize()).toBe(n);
      }
      delete process.env.UV_THREADPOOL_SIZE;
      expect(libuvPoolSize()).toBe(4);
      expect(replayConcurrency(16, 61, 15)).toEqual({ layersAtOnce: 4, threadsPerLayer: 4 });
    } finally {
      if (saved === undefined) delete process.env.UV_THREADPOOL_SIZE;
      else process.env.UV_THREADPOOL_SIZE = saved;
    }
  });

  test("the published bin sizes libuv's pool to the CPUs unless the user did; plan-cache says how it ran", () => {
    const f = path.join(dir, 'pool.jsonl');
    writeJsonlTrace(
      f,
      [0, 1, 2].map((l) => sampleRouting(300, 2, zipfWeights(8, 1.0), 70 + l)),
      2,
    );
    const bin = path.join(__dirname, '..', '..', 'bin', 'moecap.js');
    const args = [bin, 'plan-cache', f, '--preset', 'tiny', '--capacity', '2,4', '--policy', 'lru,belady', '--slow-bw', '1', '--hardware', 'h100-sxm'];
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.UV_THREADPOOL_SIZE;
    const replayLine = (r: ReturnType<typeof spawnSync>) => {
      expect(r.status).toBe(0);
      return String(r.stdout)
        .split('\n')
        .find((l) => l.startsWith('replay: '));
    };
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    const cpus = os.availableParallelism();
    const pool = Math.max(4, cpus),
      atOnce = Math.min(cpus, pool, 3);
    const own = replayLine(spawnSync(process.execPath, args, { encoding: 'utf8', env }));
    expect(own).toMatch(/^replay: 3 layers × 4 configs in \d+\.\d s, /);
    expect(own).toContain(`${plural(atOnce, 'layer')} at once (libuv pool ${pool}) × ${plural(Math.min(4, Math.ceil(cpus / atOnce)), 'thread')} each`);
    const set = replayLine(spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...env, UV_THREADPOOL_SIZE: '1' } }));
    expect(set).toContain(`1 layer at once (libuv pool 1) × ${plural(Math.min(4, cpus), 'thread')} each`);
  });

  test('trace ids beyond the model are refused', async () => {
    const f = path.join(dir, 'big.jsonl');
    fs.writeFileSync(f, '{"layer":0,"token":0,"experts":[0,12]}\n');
    await expect(
      planCacheCommand.run(
        {
          options: { preset: 'tiny', capacity: [2], policy: ['lru'], batch: 1, dtype: 'f32', 'static-profile': 1, 'slow-bw': 1 },
          positional: [f],
          given: new Set(),
        },
        io().io,
      ),
    ).rejects.toMatchObject({ code: 'ERR_CORRUPT_FILE', message: expect.stringMatching(/line 1 field 'experts': expert id 12 out of range \[0, 8\)/) });
  });
});

describe('large and hostile files with bounded memory', () => {
  test('a 1 GB line without a newline is refused after 64 KiB; a large valid trace streams with bounded RSS', async () => {
    const huge = path.join(dir, 'huge.jsonl');
    const fd = fs.openSync(huge, 'w');
    const chunk = Buffer.alloc(16 << 20, 0x31); // '1' × 16 MiB, no newline
    for (let i = 0; i < 64; i++) fs.writeSync(fd, chunk);
    fs.closeSync(fd);
    expect(fs.statSync(huge).size).toBe(1 << 30);
    await expect(TraceSpill.read(huge)).rejects.toThrow(/line 1: longer than 65536 bytes/);
    expect(() => importTrace(huge, huge + '.out', { format: 'vllm' })).toThrow(/line 1: longer than 536870912 bytes/);
    fs.rmSync(huge);
    // ~78 MB valid trace (58 layers × 20k tokens, k = 8), written streamed.
    const big = path.join(dir, 'big-valid.jsonl');
    const w = fs.openSync(big, 'w');
    const u = rng(3);
    const L = 58,
      N = 20000;
    for (let t = 0; t < N; t++) {
      const lines: string[] = [];
      for (let l = 0; l < L; l++) {
        const s = new Set<number>();
        while (s.size < 8) s.add(Math.floor(u() * 256));
        lines.push(`{"layer":${l},"token":${t},"experts":[${[...s].join(',')}]}`);
      }
      fs.writeSync(w, lines.join('\n') + '\n');
    }
    fs.closeSync(w);
    const size = fs.statSync(big).size;
    // Growth measured from just before the read: the file writer above and the 512 MiB line cap of
    // importTrace leave their own garbage, which is not the reader's.
    const rss0 = process.memoryUsage().rss;
    const tr = await TraceSpill.read(big, { experts: 256, topK: 8 });
    const grown = process.memoryUsage().rss - rss0;
    try {
      expect(tr.layers).toBe(L);
      expect(tr.tokens.every((n) => n === N)).toBe(true);
    } finally {
      tr.close();
      fs.rmSync(big);
    }
    expect(size).toBeGreaterThan(70e6);
    expect(grown).toBeLessThan(size); // bounded: less than the file itself
  }, 120000);
});

// The hostile trace's size below: 1 GiB by default (about 10 s to write and read on a 2-core VM);
// MOECAP_BIG_TRACE_MB lowers it where disk or time is short.
const BIG_TRACE_MB = Number(process.env.MOECAP_BIG_TRACE_MB ?? 1024);

describe('a large valid trace with one bad id at its end', () => {
  test(`~${BIG_TRACE_MB} MB: the error names the last line and its field; the reader's peak RSS stays bounded`, () => {
    // 61 layers × 8 of 256 experts, the canonical line with the layer padded to two characters and
    // the token to seven digits, so one block of lines is written again and again with only the
    // token digits rewritten (tokens of a layer must increase).
    const L = 61,
      k = 8,
      E = 256,
      TOK = 1000; // tokens per block
    const u = rng(11);
    const parts: string[] = [];
    const tokenAt: number[] = []; // byte offset of each line's token digits
    let off = 0;
    for (let t = 0; t < TOK; t++)
      for (let l = 0; l < L; l++) {
        const s = new Set<number>();
        while (s.size < k) s.add(Math.floor(u() * E));
        const head = `{"layer":${String(l).padStart(2, ' ')},"token":`;
        const line = `${head}1000000,"experts":[${[...s].join(',')}]}\n`;
        tokenAt.push(off + head.length);
        parts.push(line);
        off += line.length;
      }
    const block = Buffer.from(parts.join(''), 'latin1');
    const blocks = Math.max(1, Math.floor((BIG_TRACE_MB * 2 ** 20) / block.length));
    expect(TOK * blocks).toBeLessThan(9e6); // 7 digits from 1000000
    const f = path.join(dir, 'big-bad-last.jsonl');
    const fd = fs.openSync(f, 'w');
    try {
      for (let b = 0; b < blocks; b++) {
        for (let t = 0; t < TOK; t++) {
          const digits = String(1000000 + b * TOK + t);
          for (let l = 0; l < L; l++) block.write(digits, tokenAt[t * L + l], 'latin1');
        }
        fs.writeSync(fd, block);
      }
      fs.writeSync(fd, `{"layer": 0,"token":${1000000 + blocks * TOK},"experts":[0,1,2,3,4,5,6,${E}]}\n`);
    } finally {
      fs.closeSync(fd);
    }
    const lines = blocks * TOK * L + 1;
    const size = fs.statSync(f).size;
    // The read runs in a child (the built dist/) so that its peak RSS is its own, not this
    // process's (the 512 MiB line cap above already raised ours). `ms` and `maxRss` are printed
    // with MOECAP_BIG_TRACE_LOG=1.
    const script = `const { TraceSpill } = require(${JSON.stringify(path.join(__dirname, '../../dist/interop/trace_spill.js'))});
      const t0 = Date.now(); let err = null;
      TraceSpill.read(process.argv[1], { experts: ${E}, topK: ${k} }).then((t) => t.close(), (e) => { err = { code: e.code, message: e.message }; }).then(() => {
      // VmHWM where there is /proc: getrusage's maxrss keeps the forked parent's peak across exec.
      const hwm = (() => { try { return /VmHWM:\\s*(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8')); } catch { return null; } })();
      process.stdout.write(JSON.stringify({ err, ms: Date.now() - t0, maxRss: (hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS) * 1024 })); });`;
    let r: { err: { code: string; message: string } | null; ms: number; maxRss: number };
    try {
      r = JSON.parse(execFileSync(process.execPath, ['-e', script, f], { encoding: 'utf8', maxBuffer: 1 << 20 }));
    } finally {
      fs.rmSync(f);
    }
    if (process.env.MOECAP_BIG_TRACE_LOG) console.log(`${size} B trace: read to the bad line in ${r.ms} ms, peak RSS ${r.maxRss} B`);
    expect(size).toBeGreaterThan(0.9 * BIG_TRACE_MB * 2 ** 20);
    expect(r.err).toEqual({
      code: 'ERR_CORRUPT_FILE',
      message: `trace '${f}' line ${lines} field 'experts': expert id ${E} out of range [0, ${E})`,
    });
    // Bounded: a node process (~50 MB) plus 1-2 MiB read blocks and 61 spill buffers, whatever the file's size.
    expect(r.maxRss).toBeLessThan(256 * 2 ** 20);
  }, 300000);
});

describe('trace reading: the byte scanner of canonical lines and JSON.parse agree', () => {
  const read = async (body: string): Promise<{ layers: number[][]; k: number } | string> => {
    const f = path.join(dir, 'scan.jsonl');
    fs.writeFileSync(f, body);
    try {
      const tr = await TraceSpill.read(f, { experts: 16 });
      try {
        return { layers: Array.from({ length: tr.layers }, (_, l) => Array.from(tr.layer(l))), k: tr.topK };
      } finally {
        tr.close();
      }
    } catch (e) {
      expect(e).toMatchObject({ code: 'ERR_CORRUPT_FILE' });
      return String((e as Error).message);
    }
  };
  // The same line as our writer prints it and reshaped so that only JSON.parse reads it.
  const canonical = (l: unknown, t: unknown, ex: unknown[]) => `{"layer":${l},"token":${t},"experts":[${ex.join(',')}]}`;
  const reshaped = (l: unknown, t: unknown, ex: unknown[]) => `{"experts": [${ex.join(', ')}], "token": ${t}, "layer": ${l}, "x": null}`;

  test('random traces give the same ids either way, blank lines, CRLF and spaces included', async () => {
    const u = rng(9);
    for (let trial = 0; trial < 20; trial++) {
      const L = 1 + Math.floor(u() * 4),
        N = 1 + Math.floor(u() * 30),
        k = 1 + Math.floor(u() * 4);
      const recs: Array<[number, number, number[]]> = [];
      for (let t = 0; t < N; t++)
        for (let l = 0; l < L; l++) {
          const s = new Set<number>();
          while (s.size < k) s.add(Math.floor(u() * 16));
          recs.push([l, t * 3 + 1, [...s]]);
        }
      const mixed = recs.map(([l, t, ex], i) => {
        const c = canonical(l, t, ex);
        switch (i % 5) {
          case 0:
            return c;
          case 1:
            return reshaped(l, t, ex);
          case 2:
            return c.replace(/:/g, ' : ').replace(/,/g, ' ,\t') + '\r';
          case 3:
            return `${c}\n   \n`;
          default:
            return `  ${c}  `;
        }
      });
      const a = await read(recs.map(([l, t, ex]) => canonical(l, t, ex)).join('\n') + '\n');
      const b = await read(recs.map(([l, t, ex]) => reshaped(l, t, ex)).join('\n'));
      const c = await read(mixed.join('\n') + '\n');
      expect(typeof a).toBe('object');
      expect(b).toEqual(a);
      expect(c).toEqual(a);
    }
  });

  test('bad values: the same message from the scanner as from JSON.parse, naming line and field', async () => {
    const cases: Array<[unknown, unknown, unknown[], RegExp]> = [
      [5000, 0, [0, 1], /line 2 field 'layer': must be an integer in \[0, 4096\), got 5000/],
      [0, 0, [0, 1], /line 2 field 'token': token 0 of layer 0 comes after token 7/],
      [0, 9, [0, 1, 2], /line 2 field 'experts': has 3 ids, expected k = 2/],
      [0, 9, [0, 16], /line 2 field 'experts': expert id 16 out of range \[0, 16\)/],
      [0, 9, [3, 3], /line 2 field 'experts': expert ids of a token must be distinct/],
      [0, 9, [], /line 2 field 'experts': has 0 ids, expected k = 2/],
      [0, 9, [1.5, 2], /line 2 field 'experts': expert id 1.5 out of range/],
      [1.5, 9, [1, 2], /line 2 field 'layer': must be an integer in \[0, 4096\), got 1.5/],
      [0, -1, [1, 2], /line 2 field 'token': must be an integer >= 0, got -1/],
    ];
    const first = canonical(0, 7, [4, 5]);
    for (const [l, t, ex, re] of cases) {
      const a = await read(`${first}\n${canonical(l, t, ex)}\n`);
      const b = await read(`${first}\n${reshaped(l, t, ex)}\n`);
      expect(a).toMatch(re);
      expect(b).toBe(a);
    }
    // Not JSON at all (a leading zero, a cut line): the parse error with the line number.
    expect(await read(`${first}\n{"layer":0,"token":08,"experts":[1,2]}\n`)).toMatch(/line 2: not valid JSON/);
    expect(await read(`${first}\n\n{"layer":0,"token":9,"experts":[1,`)).toMatch(/line 3: not valid JSON/);
    // Exponents are JSON integers too: read through JSON.parse, accepted.
    expect(await read(`${first}\n{"layer":0,"token":1e1,"experts":[1,2E0]}\n`)).toEqual({ layers: [[4, 5, 1, 2]], k: 2 });
  });
});
