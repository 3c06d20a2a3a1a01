// The cache replay's cost per expert use and config, one layer at DeepSeek-V3's routing shape
// (E = 256, k = 8, Zipf(1.0)), BENCH_TOKENS tokens (200k), BENCH_T tokens per pass (1),
// BENCH_CAPACITIES (8,16,32): each policy's configs in one replayLayer call on one thread, ROUNDS
// rounds (3) with the policies in turn (so a busy moment of the shared machine hits them alike),
// best round kept. "ns/use" is the call's wall time over (expert ids × configs), the pass-set
// build included. Counts printed to check that two builds agree; MOECAP_ADDON_PATH runs another
// build of the addon.
// node bench/replay_rate.js   (needs the built addon and dist/)
const { replayLayer } = require('../dist/interop/cache_replay.js');
const { sampleRouting, zipfWeights } = require('../dist/cap/routing.js');

const E = 256,
  k = 8,
  N = Number(process.env.BENCH_TOKENS || 2e5),
  ROUNDS = Number(process.env.ROUNDS || 3),
  T = Number(process.env.BENCH_T || 1);
const CAPACITIES = (process.env.BENCH_CAPACITIES || '8,16,32').split(',').map(Number);
const POLICIES = ['lru', 'lfu', 'lfru', 'static', 'belady'];

async function main() {
  const ids = sampleRouting(N, k, zipfWeights(E, 1.0), 2026);
  const uses = ids.length; // the ids routed (at T = 1 each a use; at T > 1 a pass's repeats merge)
  const best = {};
  const counts = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const policy of POLICIES) {
      const configs = CAPACITIES.map((capacity) => ({ capacity, policy }));
      const t0 = process.hrtime.bigint();
      const out = await replayLayer({ ids, topK: k, experts: E, tokensPerPass: T, staticProfilePasses: 1000, configs, threads: 1 });
      const ns = Number(process.hrtime.bigint() - t0) / (uses * configs.length);
      best[policy] = Math.min(best[policy] ?? Infinity, ns);
      counts[policy] = out.map((c) => `${c.hits}/${c.evictions}`).join(' ');
    }
  }
  console.log(`${N} tokens × k = ${k}, E = ${E}, T = ${T}, capacities ${CAPACITIES.join(',')}; best of ${ROUNDS} rounds, ns per use and config`);
  for (const p of POLICIES) console.log(`${p.padEnd(7)} ${best[p].toFixed(1).padStart(7)}   hits/evictions ${counts[p]}`);
  const sum = POLICIES.reduce((s, p) => s + best[p] * CAPACITIES.length, 0);
  console.log(`all ${POLICIES.length * CAPACITIES.length} configs: ${sum.toFixed(1)} ns per use (${((sum * uses) / 1e9).toFixed(2)} s for this layer)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
