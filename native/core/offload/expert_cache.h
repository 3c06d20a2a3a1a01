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
// Which expert sits in which slot, the victims, usage and static pins are a SlotTable's books (the
// same as the CUDA store's); this class adds the slots' bytes, the reads and their states.
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
#include "offload/slot_table.h"

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
  int capacity() const { return table_.slots(); }
  const ExpertFile& file() const { return *file_; }
  CachePolicy policy() const { return table_.policy(); }
  bool async() const { return async_; }

  struct PassGuard {
    ExpertCache* c;
    ~PassGuard() {
      if (c) c->end_pass();
    }
  };

 private:
  enum class State { Empty, Loading, Ready };
  // The table's slot s: its bytes and the state of its load. The table says whose it is, whether
  // the running pass still needs it (not yet released) and whether it was prefetched.
  struct Slot {
    ExpertWeights w;
    State state = State::Empty;
    bool verified = false;  // checksum checked since the last load
  };

  void empty_slot_locked(int slot);  // the load failed, never started or was corrupt
  void issue_pending_locked();
  void start_load_locked(int slot, int expert);
  void load_slot(int slot, int expert, ExpertWeights* w, bool verify);
  void finish_load(int slot, int expert, size_t bytes, std::exception_ptr err, bool verified);
  void verify_batch_locked(std::unique_lock<std::mutex>& lock, const std::vector<Ready>& batch);

  std::unique_ptr<ExpertFile> file_;
  const bool async_;
  std::shared_ptr<Prefetcher> io_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  ExpertArena arena_;  // the slots' bytes: huge pages, page-aligned extents for O_DIRECT reads
  SlotTable table_;
  std::vector<Slot> slots_;  // [table_.slots()]
  int inflight_ = 0;
  int reading_ = 0;  // reads in progress (io_ns counts while > 0)
  int64_t reading_since_ = 0;
  // Current pass.
  std::vector<int> pending_;     // needed, no slot yet (in order)
  std::vector<int> ready_;       // needed, ready, not handed out yet
  std::vector<int> sync_loads_;  // slots to read on the caller (sync mode)
  int outstanding_ = 0;          // needed and not handed out yet
  std::exception_ptr error_;
  // The counters the table does not keep (passes, hits, misses, evictions and prefetch counts are
  // the table's): completed loads, bytes, times, waves (batches handed out).
  OffloadStats stats_;
};

}  // namespace moecap
