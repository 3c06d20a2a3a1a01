// Bounded resident slots for one layer's routed experts, filled from an ExpertFile.
//
// Pass protocol (the layer holds its own lock around a pass):
//   begin_pass(needed)   counts hits/misses, pins the needed experts, issues as many loads as
//                        free or evictable slots allow (all of them when capacity suffices)
//   next_ready(batch)    experts ready to compute: the resident ones at once, then each load as
//                        it lands (blocking, the wait is the I/O stall); empty when the pass is done
//   release(batch)       after computing them: they become evictable and waiting misses take
//                        their slots (waves, when capacity < the experts of the pass)
//   end_pass()           always (RAII PassGuard), also when a load failed
// prefetch(predicted) loads experts for a future pass into slots nobody is using.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "experts/expert_arena.h"
#include "experts/expert_weights.h"
#include "offload/cache_policy.h"
#include "offload/expert_file.h"
#include "offload/offload_config.h"
#include "offload/offload_stats.h"
#include "offload/prefetcher.h"

namespace moecap {

class ExpertCache {
 public:
  // capacity: resident slots (>= 1). async: loads on `io` (overlapped); otherwise next_ready
  // reads on the calling thread. stream_slots: for the static policy, slots kept for non-pinned
  // experts.
  ExpertCache(std::unique_ptr<ExpertFile> file, int experts, int capacity, CachePolicy policy, bool async,
              std::shared_ptr<Prefetcher> io, int stream_slots);
  ~ExpertCache();  // waits for loads in flight

  struct Ready {
    int expert;
    const ExpertWeights* weights;
  };
  void begin_pass(const std::vector<int>& needed);
  // wait=false: only what is ready now (may be empty), never blocks or reads.
  void next_ready(std::vector<Ready>& batch, bool wait);
  void release(const std::vector<Ready>& batch);
  void end_pass();

  // Loads up to `capacity` of `experts` (in the order given) that are not resident, into free or
  // evictable slots. Never waits; never evicts an expert pinned by a pass.
  void prefetch(const std::vector<int>& experts);
  // Static policy: pin the most used experts so far (the profile run) → the experts pinned.
  std::vector<int> pin_static();

  OffloadStats stats() const;
  void reset_stats();
  std::vector<int> resident() const;  // ready experts, ascending
  int capacity() const { return (int)slots_.size(); }
  const ExpertFile& file() const { return *file_; }
  CachePolicy policy() const { return policy_; }
  bool async() const { return async_; }

  struct PassGuard {
    ExpertCache* c;
    ~PassGuard() { if (c) c->end_pass(); }
  };

 private:
  enum class State { Empty, Loading, Ready };
  struct Slot {
    ExpertWeights w;
    int expert = -1;
    State state = State::Empty;
    bool pinned = false;      // needed by the running pass and not yet released
    bool prefetched = false;  // loaded by prefetch(), not yet used
    bool verified = false;    // checksum checked since the last load
  };

  int take_slot_locked(const std::vector<char>* protect);  // free slot or policy victim, or -1
  void issue_pending_locked();
  void start_load_locked(int slot, int expert, bool prefetched);
  void load_slot(int slot, int expert, ExpertWeights* w, bool verify);
  void finish_load(int slot, int expert, size_t bytes, std::exception_ptr err, bool verified);
  void verify_batch_locked(std::unique_lock<std::mutex>& lock, const std::vector<Ready>& batch);

  std::unique_ptr<ExpertFile> file_;
  const int experts_;
  const CachePolicy policy_;
  const bool async_;
  std::shared_ptr<Prefetcher> io_;
  int stream_slots_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  ExpertArena arena_;  // the slots' bytes: huge pages, page-aligned extents for O_DIRECT reads
  std::vector<Slot> slots_;
  std::vector<int> slot_of_;              // [E] slot or -1
  std::vector<ExpertUsage> usage_;        // [E]
  std::vector<char> static_;              // [E] pinned by the static policy
  int64_t tick_ = 0, pass_ = 0;
  int inflight_ = 0;
  int reading_ = 0;             // reads in progress (io_ns counts while > 0)
  int64_t reading_since_ = 0;
  // Current pass.
  bool in_pass_ = false;
  std::vector<int> pending_;              // needed, no slot yet (in order)
  std::vector<int> ready_;                // needed, ready, not handed out yet
  std::vector<int> sync_loads_;           // slots to read on the caller (sync mode)
  int outstanding_ = 0;                   // needed and not handed out yet
  std::exception_ptr error_;
  OffloadStats stats_;
};

}  // namespace moecap
