// The I/O threads: take load jobs in submission order (FIFO), so the misses of a pass, issued
// before its compute starts, start in the order the pass will use them, and a next-layer prefetch
// queues behind the current layer's misses. One per layer, or one shared by a model's layers.
// Two threads by default: with O_DIRECT reads (no kernel readahead) one thread would leave the
// device idle while it verifies an expert's checksum; two keep a read in flight meanwhile (and
// two requests queued at the device). Jobs may therefore finish out of order.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moecap {

class Prefetcher {
 public:
  explicit Prefetcher(int threads = 2);
  ~Prefetcher();  // finishes queued jobs, then joins
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Jobs must not throw (they report their own errors). `hint` (optional) runs on the I/O thread
  // just before the job ahead of it starts, so the device already works on this job's bytes
  // (readahead) while the previous one is read: two requests in flight with a plain pread.
  void submit(std::function<void()> job, std::function<void()> hint = nullptr);
  // Time with at least one job running, since creation (the union over threads; a model's
  // layers share one Prefetcher, so this is its I/O busy time).
  int64_t busy_ns();

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  struct Job {
    std::function<void()> run, hint;
  };
  std::deque<Job> queue_;
  bool stop_ = false;
  int running_ = 0;
  int64_t busy_since_ = 0, busy_total_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace moecap
