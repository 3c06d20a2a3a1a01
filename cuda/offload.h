// Offloaded experts: every expert blob lives in host memory (pinned with cudaHostAlloc; pageable
// with a warning when pinning fails), `slots` of them fit on the device at once. Copies run on
// their own stream; each slot has a "copied" event (compute waits on it) and a "freed" event
// (recorded after the last kernel that read it; a later copy into the slot waits on it), so
// copies of the next experts overlap the current expert's kernels. Which slot a copy takes, the
// eviction policy (LRU / LFU / LFRU / static, the CPU cache's order) and the wave schedule are
// moecap::SlotTable's (native/core/offload/slot_table.h, host-only and unit-tested on the CPU).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "offload/slot_table.h"

namespace moecap_cuda {

// Counters since the previous end_pass (so prefetches issued between passes count in the next).
struct OffloadStats {
  int64_t hits = 0, misses = 0, evictions = 0, loads = 0, prefetch_issued = 0, prefetch_used = 0, waves = 0;
  double h2d_bytes = 0, h2d_ms = 0;
};

class ExpertStore {
 public:
  // Throws std::runtime_error with the CUDA error text on failure.
  ExpertStore(size_t blob_bytes, int experts, int slots, moecap::CachePolicy policy, int stream_slots);
  ~ExpertStore();
  ExpertStore(const ExpertStore&) = delete;
  ExpertStore& operator=(const ExpertStore&) = delete;

  uint8_t* host_blob(int e) { return host_ + size_t(e) * blob_; }
  bool pinned() const { return pinned_; }
  const std::string& warning() const { return warning_; }
  double device_bytes() const { return double(blob_) * slots_.size(); }
  const moecap::SlotTable& table() const { return table_; }

  // One pass over `needed` (distinct experts) in waves: kernels(e, device blob) must enqueue the
  // kernels that read expert e on `compute`; they run after e's copy, and a later copy into the
  // same slot waits for them. Any slot count >= 1 works.
  void run_pass(const std::vector<int>& needed, cudaStream_t compute,
                const std::function<void(int, uint8_t*)>& kernels);
  // Starts copies of experts for a future pass into slots nobody is using → copies started.
  int prefetch(const std::vector<int>& experts);
  std::vector<int> pin_static() { return table_.pin_static(); }
  // Counters and copy-stream busy time since the previous call (after the pass synchronised).
  void end_pass(OffloadStats& st);

 private:
  struct Slot {
    uint8_t* dev = nullptr;
    cudaEvent_t copied = nullptr, freed = nullptr;
  };
  void copy_in(int e, int slot);

  size_t blob_;
  uint8_t* host_ = nullptr;
  bool pinned_ = false;
  std::string warning_;
  moecap::SlotTable table_;
  std::vector<Slot> slots_;
  cudaStream_t copy_ = nullptr;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> timing_;  // per copy since the last end_pass
  size_t timing_used_ = 0;
  moecap::SlotStats reported_;  // table counters at the last end_pass
};

}  // namespace moecap_cuda
