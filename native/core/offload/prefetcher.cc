#include "offload/prefetcher.h"

#include "runtime/clock.h"

namespace moecap {

Prefetcher::Prefetcher(int threads) {
  for (int i = 0; i < (threads < 1 ? 1 : threads); ++i) threads_.emplace_back([this] { loop(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Prefetcher::submit(std::function<void()> job, std::function<void()> hint) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back({std::move(job), std::move(hint)});
  }
  cv_.notify_one();
}

void Prefetcher::loop() {
  for (;;) {
    Job job;
    std::function<void()> next_hint;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and drained
      job = std::move(queue_.front());
      queue_.pop_front();
      if (!queue_.empty() && queue_.front().hint) next_hint = std::move(queue_.front().hint);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (running_++ == 0) busy_since_ = now_ns();
    }
    if (job.hint) job.hint();  // first of a burst: nobody hinted it yet
    if (next_hint) next_hint();
    job.run();
    std::lock_guard<std::mutex> lock(mutex_);
    if (--running_ == 0) busy_total_ += now_ns() - busy_since_;
  }
}

int64_t Prefetcher::busy_ns() {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_total_ + (running_ > 0 ? now_ns() - busy_since_ : 0);
}

}  // namespace moecap
