// Times the native cache replay at DeepSeek-V3's routing shape: 61 layers × 256 experts, k = 8,
// BENCH_TOKENS tokens (default 1M), decode (T = 1), one capacity per policy. The ids are drawn
// Zipf(1.0) per layer in memory (no JSONL parsing: that cost is separate, see the README).
// node bench/plan_cache.js   (needs the built addon: npx node-gyp rebuild)
const { replayLayer } = require('../dist/interop/cache_replay.js');
const { sampleRouting, zipfWeights } = require('../dist/cap/routing.js');

async function main() {
  const L = Number(process.env.BENCH_LAYERS || 61), E = 256, k = 8, N = Number(process.env.BENCH_TOKENS || 1e6);
  const cap = Number(process.env.BENCH_CAPACITY || 32);
  const policies = (process.env.BENCH_POLICIES || 'lru,lfu,lfru,static,belady').split(',');
  const w = zipfWeights(E, 1.0);
  const t0 = Date.now();
  let gen = 0, rss = 0;
  const totals = Object.fromEntries(policies.map((p) => [p, { hits: 0, misses: 0, ms: 0 }]));
  for (let l = 0; l < L; l++) {
    const g0 = Date.now();
    const ids = sampleRouting(N, k, w, 1000 + l);
    gen += Date.now() - g0;
    for (const p of policies) {
      const s = Date.now();
      const [r] = await replayLayer({ ids, topK: k, experts: E, tokensPerPass: 1, staticProfilePasses: 1000, configs: [{ capacity: cap, policy: p }] });
      totals[p].ms += Date.now() - s;
      totals[p].hits += r.hits;
      totals[p].misses += r.misses;
    }
    rss = Math.max(rss, process.memoryUsage().rss);
  }
  console.log(`${L} layers × ${N} tokens × k=${k}, E=${E}, capacity ${cap}: id generation ${(gen / 1e3).toFixed(1)} s (not replay)`);
  for (const p of policies)
    console.log(`${p.padEnd(7)} replay ${(totals[p].ms / 1e3).toFixed(2)} s  hit rate ${((100 * totals[p].hits) / (totals[p].hits + totals[p].misses)).toFixed(2)}%`);
  console.log(`peak RSS ${(rss / 1e6).toFixed(0)} MB, wall ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
}
main().catch((e) => { console.error(e); process.exit(1); });
