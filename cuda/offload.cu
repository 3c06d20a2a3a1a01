#include "offload.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace moecap_cuda {

static void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

ExpertStore::ExpertStore(size_t blob_bytes, int experts, int slots, int device) : blob_(blob_bytes) {
  (void)device;
  const size_t total = blob_ * size_t(experts);
  if (cudaHostAlloc(reinterpret_cast<void**>(&host_), total, cudaHostAllocPortable) == cudaSuccess) {
    pinned_ = true;
  } else {
    cudaGetLastError();  // clear the sticky-free error of the failed pinning
    host_ = static_cast<uint8_t*>(std::malloc(total));
    if (!host_) throw std::runtime_error("out of host memory for " + std::to_string(total) + " bytes of offloaded experts");
    warning_ = "cudaHostAlloc of " + std::to_string(total >> 20) +
               " MiB failed: offloaded experts use pageable memory, so host-to-device copies are staged "
               "and slower";
    std::fprintf(stderr, "moecap cuda: warning: %s\n", warning_.c_str());
  }
  where_.assign(size_t(experts), -1);
  slots_.resize(size_t(slots));
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

void ExpertStore::begin_pass(const std::vector<int>& needed) {
  pass_ = OffloadStats();
  timing_used_ = 0;
  for (auto& s : slots_) s.needed = false;
  for (int e : needed)
    if (where_[e] >= 0) {
      slots_[where_[e]].needed = true;
      ++pass_.hits;
    }
}

bool ExpertStore::fetch(int e, bool prefetch) {
  if (where_[e] >= 0) return true;
  int victim = -1;
  for (int i = 0; i < (int)slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.needed) continue;
    if (victim < 0 || s.owner < 0 || (slots_[victim].owner >= 0 && s.tick < slots_[victim].tick)) victim = i;
    if (s.owner < 0) break;
  }
  if (victim < 0) return false;
  Slot& s = slots_[victim];
  if (s.owner >= 0) {
    where_[s.owner] = -1;
    ++pass_.evictions;
  }
  s.owner = e;
  s.needed = !prefetch;
  s.tick = ++tick_;
  where_[e] = victim;
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
  pass_.h2d_bytes += double(blob_);
  if (prefetch) ++pass_.prefetched;
  else ++pass_.misses;
  return true;
}

uint8_t* ExpertStore::use(int e, cudaStream_t compute) {
  Slot& s = slots_[where_[e]];
  s.needed = true;
  s.tick = ++tick_;
  check(cudaStreamWaitEvent(compute, s.copied, 0), "cudaStreamWaitEvent(copied)");
  return s.dev;
}

void ExpertStore::done(int e, cudaStream_t compute) {
  Slot& s = slots_[where_[e]];
  check(cudaEventRecord(s.freed, compute), "cudaEventRecord(freed)");
  s.needed = false;
}

void ExpertStore::end_pass(OffloadStats& st) {
  check(cudaStreamSynchronize(copy_), "cudaStreamSynchronize(copy)");
  for (size_t i = 0; i < timing_used_; ++i) {
    float ms = 0;
    if (cudaEventElapsedTime(&ms, timing_[i].first, timing_[i].second) == cudaSuccess) pass_.h2d_ms += ms;
  }
  st = pass_;
}

}  // namespace moecap_cuda
