// The I/O thread: runs load jobs in submission order (FIFO), so the misses of a pass, issued
// before its compute starts, land in the order the pass will use them, and a next-layer prefetch
// queues behind the current layer's misses. One per layer, or one shared by a model's layers.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace moecap {

class Prefetcher {
 public:
  Prefetcher();
  ~Prefetcher();  // finishes queued jobs, then joins
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Jobs must not throw (they report their own errors). `hint` (optional) runs on the I/O thread
  // just before the job ahead of it starts, so the device already works on this job's bytes
  // (readahead) while the previous one is read: two requests in flight with a plain pread.
  void submit(std::function<void()> job, std::function<void()> hint = nullptr);

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  struct Job {
    std::function<void()> run, hint;
  };
  std::deque<Job> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace moecap
