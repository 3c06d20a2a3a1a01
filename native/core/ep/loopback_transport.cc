#include "ep/loopback_transport.h"

#include <cstring>

#include "error.h"

namespace moecap {

LoopbackHub::LoopbackHub(int ranks) : ranks_(ranks), send_(size_t(ranks)), send_bytes_(size_t(ranks)) {}

void LoopbackHub::barrier(std::unique_lock<std::mutex>& lock) {
  if (aborted_) throw_runtime("loopback exchange aborted: " + why_);
  const uint64_t gen = generation_;
  if (++arrived_ == ranks_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != gen || aborted_; });
  if (aborted_) throw_runtime("loopback exchange aborted: " + why_);
}

// Post the send blocks; once every rank has, each copies its blocks out; a second barrier keeps
// the send buffers alive until every rank has copied.
void LoopbackHub::exchange(int rank, const void* send, const int64_t* send_bytes, void* recv,
                           const int64_t* recv_bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  send_[size_t(rank)] = static_cast<const uint8_t*>(send);
  send_bytes_[size_t(rank)] = send_bytes;
  barrier(lock);
  uint8_t* dst = static_cast<uint8_t*>(recv);
  for (int p = 0; p < ranks_; ++p) {
    int64_t off = 0;
    for (int q = 0; q < rank; ++q) off += send_bytes_[size_t(p)][q];
    const int64_t n = send_bytes_[size_t(p)][rank];
    if (n != recv_bytes[p]) {
      aborted_ = true;
      why_ = "rank " + std::to_string(rank) + " expected " + std::to_string(recv_bytes[p]) + " bytes from rank " +
             std::to_string(p) + ", which sent " + std::to_string(n);
      cv_.notify_all();
      throw_runtime(why_);
    }
    if (n) std::memcpy(dst, send_[size_t(p)] + off, size_t(n));
    dst += n;
  }
  barrier(lock);
}

void LoopbackHub::abort(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!aborted_) why_ = why;
  aborted_ = true;
  cv_.notify_all();
}

}  // namespace moecap
