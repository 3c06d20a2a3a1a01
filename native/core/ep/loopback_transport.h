// N simulated ranks in one process, one thread each, exchanging through shared memory: proves the
// expert-parallel pass (placement, dispatch, combine) without MPI. A rank that fails calls
// abort() so the others' exchanges throw instead of waiting for it forever.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ep/expert_transport.h"

namespace moecap {

class LoopbackHub {
 public:
  explicit LoopbackHub(int ranks);
  int ranks() const { return ranks_; }
  void exchange(int rank, const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes);
  void abort(const std::string& why);

 private:
  void barrier(std::unique_lock<std::mutex>& lock);
  int ranks_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  std::string why_;
  std::vector<const uint8_t*> send_;
  std::vector<const int64_t*> send_bytes_;
};

class LoopbackTransport : public ExpertTransport {
 public:
  LoopbackTransport(std::shared_ptr<LoopbackHub> hub, int rank) : hub_(std::move(hub)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return hub_->ranks(); }
  void alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) override {
    hub_->exchange(rank_, send, send_bytes, recv, recv_bytes);
  }

 private:
  std::shared_ptr<LoopbackHub> hub_;
  int rank_;
};

}  // namespace moecap
