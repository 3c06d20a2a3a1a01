// Offloaded experts: every expert blob lives in host memory (pinned with cudaHostAlloc; pageable
// with a warning when pinning fails), `slots` of them fit on the device at once. Copies run on
// their own stream; each slot has a "copied" event (compute waits on it) and a "freed" event
// (recorded after the last kernel that read it; a later copy into the slot waits on it), so
// copies of the next experts overlap the current expert's kernels. Eviction is LRU among slots
// whose expert is not still needed by the pass in flight.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

namespace moecap_cuda {

struct OffloadStats {
  int64_t hits = 0, misses = 0, evictions = 0, prefetched = 0;
  double h2d_bytes = 0, h2d_ms = 0;
};

class ExpertStore {
 public:
  // Throws std::runtime_error with the CUDA error text on failure.
  ExpertStore(size_t blob_bytes, int experts, int slots, int device);
  ~ExpertStore();
  ExpertStore(const ExpertStore&) = delete;
  ExpertStore& operator=(const ExpertStore&) = delete;

  uint8_t* host_blob(int e) { return host_ + size_t(e) * blob_; }
  bool pinned() const { return pinned_; }
  const std::string& warning() const { return warning_; }
  double device_bytes() const { return double(blob_) * slots_.size(); }

  // A pass: mark the experts it needs (resident ones are then never evicted before use).
  void begin_pass(const std::vector<int>& needed);
  bool resident(int e) const { return where_[e] >= 0; }
  // Starts the copy of e into a free or evictable slot; false when every slot is still needed.
  bool fetch(int e, bool prefetch = false);
  // Device pointer of resident e, after making `compute` wait for its copy.
  uint8_t* use(int e, cudaStream_t compute);
  // After the kernels reading e are enqueued on `compute`.
  void done(int e, cudaStream_t compute);
  // Copy-stream busy time of the pass's copies (call after the pass has synchronised).
  void end_pass(OffloadStats& st);

 private:
  struct Slot {
    uint8_t* dev = nullptr;
    int owner = -1;
    uint64_t tick = 0;
    bool needed = false;
    cudaEvent_t copied = nullptr, freed = nullptr;
  };
  size_t blob_;
  uint8_t* host_ = nullptr;
  bool pinned_ = false;
  std::string warning_;
  std::vector<Slot> slots_;
  std::vector<int> where_;  // expert → slot or -1
  cudaStream_t copy_ = nullptr;
  uint64_t tick_ = 0;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> timing_;  // per copy of this pass
  size_t timing_used_ = 0;
  OffloadStats pass_;
};

}  // namespace moecap_cuda
