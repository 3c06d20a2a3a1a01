#include "offload/cache_replay.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <thread>
#include <utility>

#include "error.h"
#include "offload/belady_replay.h"
#include "offload/stack_replay.h"
#include "offload/stream_replay.h"

namespace moecap {

static void check_layer(const ReplayLayer& l) {
  if (l.experts < 1) throw_range("experts must be >= 1, got " + std::to_string(l.experts));
  if (l.top_k < 1 || l.top_k > l.experts) throw_range("topK must be in [1, experts], got " + std::to_string(l.top_k));
  if (l.tokens_per_pass < 1) throw_range("tokensPerPass must be >= 1, got " + std::to_string(l.tokens_per_pass));
  if (l.static_profile_passes < 0) throw_range("staticProfilePasses must be >= 0");
}

// The distinct experts of one pass, ascending, without a sort: each id sets its bit in `word` (one
// bit per expert) and its word's bit in `summary` (one bit per 64 experts), and the ids come out
// in order by counting trailing zeros, the bits cleared on the way so the next pass starts empty.
// A sort of a pass's 8 ids mispredicted on nearly every comparison; this costs O(distinct + E/4096).
class PassBitmap {
 public:
  explicit PassBitmap(int experts) : word_(size_t(experts + 63) / 64), summary_((word_.size() + 63) / 64) {}
  void add(int32_t e) {
    word_[size_t(e) >> 6] |= uint64_t(1) << (e & 63);
    summary_[size_t(e) >> 12] |= uint64_t(1) << ((e >> 6) & 63);
  }
  // Writes the ids at `out` (room for every id added) → past the last one written.
  int32_t* drain(int32_t* out) {
    for (size_t s = 0; s < summary_.size(); ++s) {
      for (uint64_t m = summary_[s]; m; m &= m - 1) {
        const size_t w = s * 64 + size_t(__builtin_ctzll(m));
        for (uint64_t b = word_[w]; b; b &= b - 1) *out++ = int32_t(w * 64 + size_t(__builtin_ctzll(b)));
        word_[w] = 0;
      }
      summary_[s] = 0;
    }
    return out;
  }

 private:
  std::vector<uint64_t> word_, summary_;
};

PassSets build_pass_sets(const int32_t* ids, int64_t tokens, const ReplayLayer& layer) {
  check_layer(layer);
  if (tokens < 0) throw_range("tokens must be >= 0");
  const int k = layer.top_k, T = layer.tokens_per_pass;
  PassSets p;
  p.offsets.reserve(size_t(tokens / T + 2));
  p.offsets.push_back(0);
  // Sized for every id (no pass holds more than its tokens' ids), trimmed to the distinct ones at the end.
  p.experts.resize(size_t(tokens * k));
  int32_t* out = p.experts.data();
  PassBitmap pass(layer.experts);
  for (int64_t t0 = 0; t0 < tokens; t0 += T) {
    const int64_t t1 = std::min(tokens, t0 + T);
    for (int64_t i = t0 * k; i < t1 * k; ++i) {
      const int32_t e = ids[i];
      if (e < 0) continue;
      if (e >= layer.experts)
        throw_range("expert id " + std::to_string(e) + " at token " + std::to_string(i / k) + " is out of range [0, " +
                    std::to_string(layer.experts) + ")");
      pass.add(e);
    }
    out = pass.drain(out);
    p.offsets.push_back(int64_t(out - p.experts.data()));
  }
  p.experts.resize(size_t(out - p.experts.data()));
  return p;
}

// The work of one layer: each job several configs of one policy at once (Belády at every capacity,
// belady_replay.h; lru/lfu/lfru at the capacities no pass exceeds by a stack walk, stack_replay.h),
// or one config by SlotTable's rule (stream_replay.h: static, and the smaller capacities, which
// stream in waves).
struct ReplayJob {
  bool stack = false;
  bool belady = false;
  CachePolicy policy = CachePolicy::LRU;
  std::vector<int> capacities;
  std::vector<size_t> slots;  // where each capacity's counts go in the result
};

static std::vector<ReplayJob> plan_jobs(const std::vector<ReplayConfig>& configs, const ReplayLayer& layer,
                                        int largest) {
  std::vector<ReplayJob> single, stacks;
  const auto stack_for = [&stacks](bool belady, CachePolicy policy) -> ReplayJob& {
    for (ReplayJob& j : stacks)
      if (j.belady == belady && (belady || j.policy == policy)) return j;
    ReplayJob j;
    j.stack = true, j.belady = belady, j.policy = policy;
    stacks.push_back(j);
    return stacks.back();
  };
  for (size_t c = 0; c < configs.size(); ++c) {
    const ReplayConfig& cfg = configs[c];
    if (cfg.capacity < 1) throw_range("capacity must be >= 1, got " + std::to_string(cfg.capacity));
    const int cap = std::min(cfg.capacity, layer.experts);
    const bool stack = cfg.belady || (cfg.policy != CachePolicy::Static && cap >= largest);
    if (stack) {
      ReplayJob& j = stack_for(cfg.belady, cfg.policy);
      j.capacities.push_back(cap);
      j.slots.push_back(c);
    } else {
      ReplayJob j;
      j.policy = cfg.policy;
      j.capacities = {cfg.capacity};
      j.slots = {c};
      single.push_back(j);
    }
  }
  // The stack walks first: each costs several single configs' replays (the longest jobs first
  // keep the threads evenly busy to the end).
  stacks.insert(stacks.end(), single.begin(), single.end());
  return stacks;
}

std::vector<ReplayCounts> replay_layer(const int32_t* ids, int64_t tokens, const ReplayLayer& layer,
                                       const std::vector<ReplayConfig>& configs, int threads) {
  const PassSets p = build_pass_sets(ids, tokens, layer);
  const std::vector<ReplayJob> jobs = plan_jobs(configs, layer, std::max(1, largest_pass(p)));
  std::vector<ReplayCounts> out(configs.size());
  std::vector<std::exception_ptr> errors(jobs.size());
  const auto run = [&](const ReplayJob& j) {
    if (!j.stack) {
      out[j.slots[0]] = replay_streaming(p, layer, j.capacities[0], j.policy);
      return;
    }
    const std::vector<ReplayCounts> r =
        j.belady ? replay_belady(p, layer, j.capacities) : replay_online_stack(p, layer, j.policy, j.capacities);
    for (size_t i = 0; i < r.size(); ++i) out[j.slots[i]] = r[i];
  };
  // The jobs share the pass sets and nothing else: each thread takes the next one.
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      try {
        run(jobs[j]);
      } catch (...) {
        errors[j] = std::current_exception();
      }
    }
  };
  const size_t n = std::min(jobs.size(), size_t(std::max(1, threads)));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

}  // namespace moecap
