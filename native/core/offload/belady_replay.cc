#include "offload/belady_replay.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "offload/stack_replay.h"

namespace moecap {
namespace {

constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;

uint64_t load_word(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

void store_word(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

// Bytes [0, n) of a word set, n clamped to [0, 8].
uint64_t first_bytes(int64_t n) { return n <= 0 ? 0 : n >= 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * n)) - 1; }

// Non-zero when a byte of `x` selected by `mask` equals the byte `c` (repeated in `cs`): the
// unselected bytes are made non-zero, then the zero-byte test, exact as a whole (its borrows can
// only mark bytes above a true zero).
uint64_t any_equal(uint64_t x, uint64_t mask, uint64_t cs) {
  const uint64_t t = (x ^ cs) | (~mask & kOnes);
  return (t - kOnes) & ~t & kHigh;
}

// The experts kept across each gap at one capacity, and the hits so far.
class Gaps {
 public:
  Gaps(int64_t passes, int capacity, int experts)
      : capacity_(capacity), every_(capacity >= experts), wide_(!every_ && capacity > 255) {
    // Every expert fits (every_): each use after the first is a hit, no gap is counted. Otherwise
    // a count per gap, with room for a 16-byte window at the last one.
    if (every_) return;
    if (wide_) {
      wide_kept_.assign(size_t(passes) + 16, 0);
    } else {
      kept_.assign(size_t(passes) + 16, 0);
      cs_ = kOnes * uint64_t(capacity);
    }
  }

  // The use at pass i of an expert last used at pass q < i.
  void use(int64_t q, int64_t i) {
    if (every_) {
      ++hits_;
      return;
    }
    if (wide_) {
      use_wide(q, i);
      return;
    }
    const int64_t len = i - q;
    uint8_t* o = kept_.data() + q;
    const uint64_t lo = load_word(o), hi = load_word(o + 8);
    const uint64_t mlo = first_bytes(len), mhi = first_bytes(len - 8);
    // A gap never holds more than the capacity, so "full" is "equal to it".
    const uint64_t room = (any_equal(lo, mlo, cs_) | any_equal(hi, mhi, cs_)) == 0;
    if (len > 16 && room) {
      use_long(o, len);
      return;
    }
    hits_ += int64_t(room);
    const uint64_t add = kOnes & (0 - room);
    store_word(o, lo + (add & mlo));
    store_word(o + 8, hi + (add & mhi));
  }

  int capacity() const { return capacity_; }
  int64_t hits() const { return hits_; }

 private:
  // An interval with room in its first 16 gaps: the rest decides, eight gaps a word (the last
  // word's bytes past the interval masked; the padding keeps its read inside the array).
  void use_long(uint8_t* o, int64_t len) {
    int64_t g = 16;
    for (; g + 8 <= len; g += 8)
      if (any_equal(load_word(o + g), ~uint64_t(0), cs_)) return;
    if (g < len && any_equal(load_word(o + g), first_bytes(len - g), cs_)) return;
    ++hits_;
    for (g = 0; g + 8 <= len; g += 8) store_word(o + g, load_word(o + g) + kOnes);
    if (g < len) store_word(o + g, load_word(o + g) + (kOnes & first_bytes(len - g)));
  }

  void use_wide(int64_t q, int64_t i) {
    uint32_t* o = wide_kept_.data() + q;
    const int64_t len = i - q;
    if (std::find(o, o + len, uint32_t(capacity_)) != o + len) return;
    ++hits_;
    for (int64_t g = 0; g < len; ++g) ++o[g];
  }

  int capacity_;
  bool every_, wide_;
  uint64_t cs_ = 0;
  std::vector<uint8_t> kept_;        // [gap], capacities <= 255
  std::vector<uint32_t> wide_kept_;  // [gap], larger ones
  int64_t hits_ = 0;
};

}  // namespace

std::vector<ReplayCounts> replay_belady(const PassSets& p, const ReplayLayer& layer,
                                        const std::vector<int>& capacities) {
  check_capacities(capacities, 1, layer.experts, "belady");
  const int64_t P = p.passes();
  std::vector<Gaps> gaps;
  gaps.reserve(capacities.size());
  for (int c : capacities) gaps.emplace_back(P, c, layer.experts);
  std::vector<int64_t> last(size_t(layer.experts), -1);  // the pass that last used each expert
  for (int64_t i = 0; i < P; ++i)
    for (int64_t j = p.offsets[size_t(i)]; j < p.offsets[size_t(i + 1)]; ++j) {
      const int32_t e = p.experts[size_t(j)];
      const int64_t q = last[size_t(e)];
      last[size_t(e)] = i;
      if (q < 0) continue;  // a first use: a miss at every capacity
      for (Gaps& g : gaps) g.use(q, i);
    }
  const int distinct = int(std::count_if(last.begin(), last.end(), [](int64_t q) { return q >= 0; }));
  std::vector<ReplayCounts> out;
  for (const Gaps& g : gaps)
    out.push_back(counts_from_hits(P, int64_t(p.experts.size()), g.hits(), g.capacity(), distinct));
  return out;
}

}  // namespace moecap
