import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configId, expandPlan, planFingerprint, validatePlan } from '../../lib/cap/plan';
import { InputDesigner, readRoutingTrace, sampleRouting, traceSlice, zipfWeights, naturalTokens } from '../../lib/cap/routing';
import { TraceSpill } from '../../lib/interop/trace_spill';
import { writeBinaryTrace } from '../../lib/interop/trace_binary';
import { seededRouter } from '../../lib/cap/seeded_router';
import { createMoeLayer } from '../../lib/moe_layer';

describe('plan', () => {
  test('cartesian product, layer-building options outermost, phase-specific lengths', () => {
    const plan = validatePlan({ presets: ['tiny'], batch: [1, 4], dtypes: ['f32', 'bf16'], seqLen: [8, 16], steps: [2], skew: [0, 1] });
    const cs = expandPlan(plan);
    // dtype (2) × routing (2) × [prefill: batch 2 × seq 2 + decode: batch 2] = 2 × 2 × 6
    expect(cs).toHaveLength(24);
    expect(cs.slice(0, 12).every((c) => c.dtype === 'f32')).toBe(true);
    expect(cs.filter((c) => c.phase === 'decode').every((c) => c.seqLen === 1 && c.steps === 2)).toBe(true);
    expect(cs[0].routing).toEqual({ kind: 'natural' });
    expect(cs[12 - 1].routing).toEqual({ kind: 'skewed', skew: 1 });
    const ids = cs.map((c, i) => configId(c, i));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toBe('0-tiny-L1-prefill-b1s8-f32-natural');
    expect(planFingerprint(plan)).toBe(planFingerprint(validatePlan({ ...plan })));
    expect(planFingerprint(plan)).not.toBe(planFingerprint(validatePlan({ ...plan, repeats: 9 })));
  });
  test('bad plans name the option', () => {
    expect(() => validatePlan({ presets: ['nope'] })).toThrow(/unknown preset 'nope'/);
    expect(() => validatePlan({ batch: [0] })).toThrow(/batch values must be integers >= 1/);
    expect(() => validatePlan({ dtypes: ['f16'] })).toThrow(/dtype must be one of/);
    expect(() => validatePlan({ skew: [-1] })).toThrow(/skew/);
    expect(() => validatePlan({ phases: ['train' as 'prefill'] })).toThrow(/phase/);
    expect(() => validatePlan({ bogus: 1 } as never)).toThrow(/unknown plan option 'bogus'/);
    expect(() => validatePlan({ budgetSeconds: 0 })).toThrow(/budget/);
  });
});

describe('designed routing', () => {
  test('Zipf sampling: k distinct experts per token, popular experts first', () => {
    const ids = sampleRouting(4000, 2, zipfWeights(8, 1.5), 7);
    const count = new Array(8).fill(0);
    for (let t = 0; t < 4000; t++) {
      expect(ids[2 * t]).not.toBe(ids[2 * t + 1]);
      count[ids[2 * t]]++;
      count[ids[2 * t + 1]]++;
    }
    for (let e = 1; e < 8; e++) expect(count[e - 1]).toBeGreaterThan(count[e]);
    // α = 0 is uniform: every expert near T·k/E = 1000
    const u = sampleRouting(4000, 2, zipfWeights(8, 0), 3);
    const cu = new Array(8).fill(0);
    u.forEach((e) => cu[e]++);
    for (const c of cu) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });
  test('designed inputs hit the target logits exactly (W x = z)', () => {
    const E = 8,
      H = 64,
      k = 2;
    const W = seededRouter(3, E, H);
    const d = new InputDesigner(W, E, H);
    const ids = Int32Array.from([5, 1, 0, 7, 3, 2]);
    const x = d.design(ids, k, 11);
    for (let t = 0; t < 3; t++)
      for (let e = 0; e < E; e++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += W[e * H + h] * x[t * H + h];
        const j = [ids[t * k], ids[t * k + 1]].indexOf(e);
        expect(s).toBeCloseTo(j < 0 ? -4 : 4 - 0.01 * j, 4);
      }
    expect(() => new InputDesigner(new Float32Array(8 * 4), 8, 4)).toThrow(/experts <= hidden/);
  });
  test('the seeded router regenerated in TS routes like the native layer', async () => {
    const E = 8,
      H = 64,
      k = 2,
      T = 64;
    const layer = await createMoeLayer({ hidden: H, intermediate: 32, experts: E, topK: k, weights: { seed: 5 } });
    try {
      const designer = new InputDesigner(seededRouter(5, E, H), E, H);
      const ids = sampleRouting(T, k, zipfWeights(E, 1), 1);
      const r = await layer.route(designer.design(ids, k, 2));
      for (let t = 0; t < T; t++) expect([...r.expertIds.subarray(t * k, t * k + k)].sort()).toEqual([...ids.subarray(t * k, t * k + k)].sort());
      // and natural tokens agree with the TS logits' top-k
      const x = naturalTokens(T, H, 9);
      const W = seededRouter(5, E, H);
      const n = await layer.route(x);
      for (let t = 0; t < T; t++) {
        const logits = Array.from({ length: E }, (_, e) => {
          let s = 0;
          for (let h = 0; h < H; h++) s += W[e * H + h] * x[t * H + h];
          return s;
        });
        const top = logits
          .map((v, e) => [v, e])
          .sort((a, b) => b[0] - a[0])
          .slice(0, k)
          .map((p) => p[1])
          .sort();
        expect([...n.expertIds.subarray(t * k, t * k + k)].sort()).toEqual(top);
      }
    } finally {
      layer.close();
    }
  });
});

test('designed routing through a grouped sigmoid router with scaling (DeepSeek-V3 style)', async () => {
  const E = 16,
    H = 64,
    k = 4;
  const layer = await createMoeLayer({
    hidden: H,
    intermediate: 16,
    experts: E,
    topK: k,
    scoring: 'sigmoid',
    renormalize: true,
    routedScalingFactor: 2.5,
    groups: { count: 4, keep: 2 },
    weights: { seed: 21 },
  });
  try {
    const designer = new InputDesigner(seededRouter(21, E, H), E, H);
    // experts from groups 0 and 3 only (groups of 4 experts), so the two kept groups hold them all
    const ids = Int32Array.from([0, 1, 12, 15, 2, 3, 13, 14, 1, 3, 0, 12]);
    const r = await layer.route(designer.design(ids, k, 5));
    for (let t = 0; t < 3; t++)
      expect([...r.expertIds.subarray(t * k, t * k + k)].sort((a, b) => a - b)).toEqual([...ids.subarray(t * k, t * k + k)].sort((a, b) => a - b));
    // equal designed logits within a token → renormalised weights ≈ 2.5/k each
    for (const w of r.expertWeights.subarray(0, k)) expect(w).toBeCloseTo(2.5 / k, 2);
  } finally {
    layer.close();
  }
});

describe('routing traces', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moecap-trace-'));
  const write = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  afterAll(() => fs.rmSync(dir, { recursive: true }));
  test('reads layers in token order, wraps around', async () => {
    const f = write('ok.jsonl', '{"layer":0,"token":0,"experts":[0,1]}\n\n{"layer":1,"token":0,"experts":[4,5]}\n{"layer":0,"token":2,"experts":[2,3]}\n');
    const t = await readRoutingTrace(f, 8, 2);
    expect(t.topK).toBe(2);
    expect(t.layers.map((l) => [...l])).toEqual([
      [0, 1, 2, 3],
      [4, 5],
    ]);
    expect([...traceSlice(t, 0, 1, 3)]).toEqual([2, 3, 0, 1, 2, 3]);
    expect([...traceSlice(t, 3, 0, 1)]).toEqual([4, 5]); // layer 3 → trace layer 1
  });
  test('a binary trace reads as the JSONL it was written from', async () => {
    const f = write('two.jsonl', '{"layer":0,"token":0,"experts":[7,1]}\n{"layer":0,"token":1,"experts":[2,3]}\n{"layer":1,"token":0,"experts":[4,5]}\n');
    const spill = await TraceSpill.read(f, { experts: 8, topK: 2 });
    const bin = path.join(dir, 'two.mctrace');
    try {
      writeBinaryTrace(bin, spill, 8);
    } finally {
      spill.close();
    }
    expect(await readRoutingTrace(bin, 8, 2)).toEqual({ ...(await readRoutingTrace(f, 8, 2)), file: bin });
    // checked against the model's shape like a JSONL trace
    await expect(readRoutingTrace(bin, 8, 3)).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/two\.mctrace' field 'topK': is 2/),
    });
    await expect(readRoutingTrace(bin, 4, 2)).rejects.toMatchObject({
      code: 'ERR_CORRUPT_FILE',
      message: expect.stringMatching(/two\.mctrace' field 'experts': is 8, more than the model's 4/),
    });
  });
  test("malformed traces: the core's ERR_CORRUPT_FILE naming the file, line and field", async () => {
    const bad = (name: string, text: string, re: RegExp) =>
      expect(readRoutingTrace(write(name, text), 8, 2)).rejects.toMatchObject({ code: 'ERR_CORRUPT_FILE', message: expect.stringMatching(re) });
    const L0 = '{"layer":0,"token":0,"experts":[0,1]}\n';
    await bad('a', L0 + 'not json\n', /trace '.*\/a' line 2: not valid JSON/);
    await bad('b', '{"layer":0,"token":0,"experts":[0,9]}', /trace '.*\/b' line 1 field 'experts': expert id 9 out of range \[0, 8\)/);
    await bad('c', L0 + '{"layer":0,"token":1,"experts":[0]}', /trace '.*\/c' line 2 field 'experts': has 1 ids, expected k = 2/);
    await bad('d', '{"layer":0,"token":0,"experts":[1,1]}', /trace '.*\/d' line 1 field 'experts': expert ids of a token must be distinct/);
    await bad('e', '{"layer":1,"token":0,"experts":[0,1]}', /trace '.*\/e': layer 0 has no tokens \(layers must be 0\.\.1\)/);
    await bad('f', '', /trace '.*\/f' has no routing lines/);
    // tokens of a layer in increasing order: a repeated or earlier token is refused, not sorted
    await bad('g', L0 + '{"layer":0,"token":0,"experts":[2,3]}', /trace '.*\/g' line 2 field 'token': token 0 of layer 0 comes after token 0/);
    await bad('h', '{"layer":0,"token":1,"experts":[0,1]}\n' + L0, /trace '.*\/h' line 2 field 'token': token 0 of layer 0 comes after token 1/);
    await bad('i', '{"layer":-1,"token":0,"experts":[0,1]}', /trace '.*\/i' line 1 field 'layer': must be an integer/);
    await expect(readRoutingTrace(path.join(dir, 'missing'), 8, 2)).rejects.toMatchObject({
      code: 'ERR_IO',
      message: expect.stringMatching(/cannot read trace '.*missing'/),
    });
  });
});
