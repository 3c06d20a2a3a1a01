#include "offload.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace moecap_cuda {

static void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

ExpertStore::ExpertStore(size_t blob_bytes, int experts, int slots, moecap::CachePolicy policy, int stream_slots)
    : blob_(blob_bytes), table_(experts, slots, policy, stream_slots) {
  const size_t total = blob_ * size_t(experts);
  if (cudaHostAlloc(reinterpret_cast<void**>(&host_), total, cudaHostAllocPortable) == cudaSuccess) {
    pinned_ = true;
  } else {
    cudaGetLastError();  // clear the sticky-free error of the failed pinning
    host_ = static_cast<uint8_t*>(std::malloc(total));
    if (!host_)
      throw std::runtime_error("out of host memory for " + std::to_string(total) + " bytes of offloaded experts");
    warning_ = "cudaHostAlloc of " + std::to_string(total >> 20) +
               " MiB failed: offloaded experts use pageable memory, so host-to-device copies are staged "
               "and slower";
    std::fprintf(stderr, "moecap cuda: warning: %s\n", warning_.c_str());
  }
  slots_.resize(size_t(table_.slots()));
  for (auto& s : slots_) {
    check(cudaMalloc(reinterpret_cast<void**>(&s.dev), blob_), "cudaMalloc(expert cache slot)");
    check(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventCreateWithFlags(&s.freed, cudaEventDisableTiming), "cudaEventCreate");
  }
  check(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking), "cudaStreamCreate(copy)");
}

ExpertStore::~ExpertStore() {
  if (copy_) cudaStreamSynchronize(copy_);
  for (auto& s : slots_) {
    cudaFree(s.dev);
    if (s.copied) cudaEventDestroy(s.copied);
    if (s.freed) cudaEventDestroy(s.freed);
  }
  for (auto& t : timing_) {
    cudaEventDestroy(t.first);
    cudaEventDestroy(t.second);
  }
  if (copy_) cudaStreamDestroy(copy_);
  if (pinned_) cudaFreeHost(host_);
  else std::free(host_);
}

void ExpertStore::copy_in(int e, int slot) {
  Slot& s = slots_[size_t(slot)];
  // The slot's previous reader must be done before it is overwritten.
  check(cudaStreamWaitEvent(copy_, s.freed, 0), "cudaStreamWaitEvent(freed)");
  if (timing_used_ == timing_.size()) {
    cudaEvent_t a, b;
    check(cudaEventCreate(&a), "cudaEventCreate");
    check(cudaEventCreate(&b), "cudaEventCreate");
    timing_.emplace_back(a, b);
  }
  auto& t = timing_[timing_used_++];
  check(cudaEventRecord(t.first, copy_), "cudaEventRecord");
  check(cudaMemcpyAsync(s.dev, host_blob(e), blob_, cudaMemcpyHostToDevice, copy_), "cudaMemcpyAsync(expert)");
  check(cudaEventRecord(t.second, copy_), "cudaEventRecord");
  check(cudaEventRecord(s.copied, copy_), "cudaEventRecord(copied)");
}

void ExpertStore::run_pass(const std::vector<int>& needed, cudaStream_t compute,
                           const std::function<void(int, uint8_t*)>& kernels) {
  moecap::stream_pass(
      table_, needed, [&](int e, int slot) { copy_in(e, slot); },
      [&](int e, int slot) {
        Slot& s = slots_[size_t(slot)];
        check(cudaStreamWaitEvent(compute, s.copied, 0), "cudaStreamWaitEvent(copied)");
        kernels(e, s.dev);
        check(cudaEventRecord(s.freed, compute), "cudaEventRecord(freed)");
      });
}

int ExpertStore::prefetch(const std::vector<int>& experts) {
  const auto loads = table_.prefetch(experts);
  for (size_t i = 0; i < loads.size(); ++i) {
    try {
      copy_in(loads[i].first, loads[i].second);
    } catch (...) {
      for (size_t j = i; j < loads.size(); ++j) table_.drop(loads[j].first);  // never started
      throw;
    }
  }
  return (int)loads.size();
}

void ExpertStore::end_pass(OffloadStats& st) {
  check(cudaStreamSynchronize(copy_), "cudaStreamSynchronize(copy)");
  st = OffloadStats();
  for (size_t i = 0; i < timing_used_; ++i) {
    float ms = 0;
    if (cudaEventElapsedTime(&ms, timing_[i].first, timing_[i].second) == cudaSuccess) st.h2d_ms += ms;
  }
  timing_used_ = 0;
  const moecap::SlotStats& now = table_.stats();
  st.hits = now.hits - reported_.hits;
  st.misses = now.misses - reported_.misses;
  st.evictions = now.evictions - reported_.evictions;
  st.loads = now.loads - reported_.loads;
  st.prefetch_issued = now.prefetch_issued - reported_.prefetch_issued;
  st.prefetch_used = now.prefetch_used - reported_.prefetch_used;
  st.waves = now.waves - reported_.waves;
  st.h2d_bytes = double(st.loads) * double(blob_);
  reported_ = now;
}

}  // namespace moecap_cuda
