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

  // Jobs must not throw (they report their own errors).
  void submit(std::function<void()> job);

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace moecap
