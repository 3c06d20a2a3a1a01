// Eviction order of each policy and hit/miss counts on scripted routing sequences (see
// scriptedOptions: a token with a large value at hidden index e is routed to expert e).
import { native, sameBits, scriptedOptions, scriptedTokens } from './helpers';

// Runs one pass per step (each step: the experts of one token, top-1), returns resident sets and
// per-pass hit/miss counts.
async function run(layer: any, steps: number[][]) {
  const trace = [];
  for (const ids of steps) {
    const r = await layer.forward(scriptedTokens([ids]));
    expect(Array.from(r.expertIds)).toEqual(ids);
    trace.push({ resident: Array.from(r.stats.offload.resident), hits: r.stats.offload.hits, misses: r.stats.offload.misses });
  }
  return trace;
}
const residents = (t: any[]) => t.map((s) => s.resident);

describe('offload: eviction order per policy (capacity 2, one expert per pass)', () => {
  test('lru evicts the least recently used', async () => {
    const l = await native.createLayer(scriptedOptions(1, { capacity: 2, policy: 'lru' }));
    const t = await run(l, [[0], [1], [0], [2], [1], [0]]);
    expect(residents(t)).toEqual([[0], [0, 1], [0, 1], [0, 2], [1, 2], [0, 1]]);
    expect(t.map((s) => s.hits)).toEqual([0, 0, 1, 0, 0, 0]);
    expect(l.offloadInfo().stats).toMatchObject({ hits: 1, misses: 5, evictions: 3, loads: 5 });
  });

  test('lfu evicts the least frequently used', async () => {
    const l = await native.createLayer(scriptedOptions(1, { capacity: 2, policy: 'lfu' }));
    const t = await run(l, [[0], [0], [0], [1], [2], [1], [2]]);
    // 0 (3 uses) survives; 1 and 2 push each other out.
    expect(residents(t)).toEqual([[0], [0], [0], [0, 1], [0, 2], [0, 1], [0, 2]]);
    expect(l.offloadInfo().stats).toMatchObject({ hits: 2, misses: 5 });
  });

  test('lfru: frequency fades with age (unlike lfu)', async () => {
    const l = await native.createLayer(scriptedOptions(1, { capacity: 2, policy: 'lfru' }));
    const t = await run(l, [[0], [0], [0], [1], [2], [1], [2]]);
    // pass 5: 0 scores 3/(1+2) = 1 > 1 scores 1/2 → evict 1; pass 6: 0 = 3/4 > 2 = 1/2 → evict 2;
    // pass 7: 0 = 3/5 < 1 = 2/2 → evict 0.
    expect(residents(t)).toEqual([[0], [0], [0], [0, 1], [0, 2], [0, 1], [1, 2]]);
    expect(l.offloadInfo().stats).toMatchObject({ hits: 2, misses: 5 });
  });

  test('static pins the most used experts of the profile run', async () => {
    const l = await native.createLayer(scriptedOptions(1, { capacity: 3, policy: 'static' }));
    await run(l, [[0], [0], [1], [0], [2], [1]]); // profile: 0 ×3, 1 ×2, 2 ×1
    expect(Array.from(l.pinStatic())).toEqual([0, 1]); // capacity 3 keeps 1 streaming slot
    const t = await run(l, [[3], [4], [5], [0], [1], [3]]);
    expect(residents(t)).toEqual([
      [0, 1, 3],
      [0, 1, 4],
      [0, 1, 5],
      [0, 1, 5],
      [0, 1, 5],
      [0, 1, 3],
    ]);
    expect(t.map((s) => s.hits)).toEqual([0, 0, 0, 1, 1, 0]);
    // LRU on the same sequence evicts the hot experts.
    const lru = await native.createLayer(scriptedOptions(1, { capacity: 3, policy: 'lru' }));
    await run(lru, [[0], [0], [1], [0], [2], [1]]);
    const u = await run(lru, [[3], [4], [5], [0], [1], [3]]);
    expect(u.map((s) => s.hits)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('offload: hit/miss counts on a scripted sequence', () => {
  // Two tokens per pass, top-2: a pass needs up to 4 experts; capacity 3 forces waves.
  const passes = [
    [
      [0, 1],
      [2, 3],
    ],
    [
      [0, 1],
      [1, 0],
    ],
    [
      [4, 5],
      [0, 4],
    ],
    [
      [2, 0],
      [1, 0],
    ],
  ];
  async function runScripted(prefetch: boolean) {
    const l = await native.createLayer(scriptedOptions(2, { capacity: 3, policy: 'lru', prefetch }));
    const ref = await native.createLayer(scriptedOptions(2, undefined));
    const counts: number[][] = [];
    const residentSets: number[][] = [];
    for (const p of passes) {
      const x = scriptedTokens(p);
      const [a, b] = [await ref.forward(x), await l.forward(x)];
      expect(sameBits(a.output, b.output)).toBe(true);
      counts.push([b.stats.offload.hits, b.stats.offload.misses]);
      residentSets.push(Array.from(b.stats.offload.resident as ArrayLike<number>).sort((u, v) => u - v));
    }
    return { l, counts, residentSets };
  }

  test('lru, capacity 3, no prefetch (loads in order on the compute thread): exact sequence', async () => {
    const { l, counts, residentSets } = await runScripted(false);
    // pass 1 {0,1,2,3}: 4 misses; 3 waits for 0 to be computed and takes its slot → {1,2,3}.
    // pass 2 {0,1}: 1 hits; 0 misses and evicts 2 (LRU: 2 and 3 last used in pass 1, 2 earlier) → {0,1,3}.
    // pass 3 {0,4,5}: 0 hits; 4, 5 miss and evict 3, then 1 → {0,4,5}.
    // pass 4 {0,1,2}: 0 hits; 1, 2 miss and evict 4, 5 → {0,1,2}.
    expect(counts).toEqual([
      [0, 4],
      [1, 1],
      [1, 2],
      [1, 2],
    ]);
    expect(residentSets).toEqual([
      [1, 2, 3],
      [0, 1, 3],
      [0, 4, 5],
      [0, 1, 2],
    ]);
    expect(l.offloadInfo().stats).toMatchObject({ hits: 3, misses: 9, loads: 9 });
  });

  test('lru, capacity 3, prefetch: two I/O threads land reads in either order, the invariants hold', async () => {
    // Which of the first wave's reads lands (and is computed and released) first decides which
    // slot expert 3 takes in pass 1, so the later sets may differ from the in-order path above.
    const { l, counts, residentSets } = await runScripted(true);
    const needed = passes.map((p) => new Set(p.flat()));
    expect(counts[0]).toEqual([0, 4]);
    counts.forEach(([h, m], i) => expect(h + m).toBe(needed[i].size));
    residentSets.forEach((set, i) => {
      expect(set.length).toBe(3);
      for (const e of set) expect(needed[i].has(e) || (i > 0 && residentSets[i - 1].includes(e))).toBe(true);
    });
    expect(residentSets[2]).toEqual([0, 4, 5]); // {0,4,5} needs all three slots
    const st = l.offloadInfo().stats;
    expect(st.hits + st.misses).toBe(needed.reduce((n, s) => n + s.size, 0));
    expect(st.loads).toBe(st.misses);
  });

  test('capacity 1 streams every expert of a pass in waves and never errors', async () => {
    const l = await native.createLayer(scriptedOptions(2, { capacity: 1, policy: 'lfu' }));
    const ref = await native.createLayer(scriptedOptions(2, undefined));
    const x = scriptedTokens([
      [0, 1],
      [2, 3],
      [4, 5],
      [5, 0],
    ]);
    const [a, b] = [await ref.forward(x), await l.forward(x)];
    expect(sameBits(a.output, b.output)).toBe(true);
    expect(b.stats.offload).toMatchObject({ hits: 0, misses: 6, loads: 6 });
    expect(b.stats.offload.waves).toBe(6);
    expect(b.stats.offload.resident).toHaveLength(1);
  });
});
