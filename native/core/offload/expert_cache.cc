#include "offload/expert_cache.h"

#include <algorithm>

#include "error.h"
#include "runtime/clock.h"

namespace moecap {

constexpr int kBatchWhileWaiting = 4;

OffloadStats OffloadStats::operator-(const OffloadStats& o) const {
  OffloadStats d;
  d.passes = passes - o.passes; d.hits = hits - o.hits; d.misses = misses - o.misses;
  d.evictions = evictions - o.evictions; d.loads = loads - o.loads; d.bytes_read = bytes_read - o.bytes_read;
  d.io_ns = io_ns - o.io_ns; d.stall_ns = stall_ns - o.stall_ns; d.prefetch_issued = prefetch_issued - o.prefetch_issued;
  d.prefetch_used = prefetch_used - o.prefetch_used; d.waves = waves - o.waves; d.verify_ns = verify_ns - o.verify_ns;
  return d;
}

OffloadStats& OffloadStats::operator+=(const OffloadStats& o) {
  passes += o.passes; hits += o.hits; misses += o.misses; evictions += o.evictions; loads += o.loads;
  bytes_read += o.bytes_read; io_ns += o.io_ns; stall_ns += o.stall_ns; prefetch_issued += o.prefetch_issued;
  prefetch_used += o.prefetch_used; waves += o.waves; verify_ns += o.verify_ns;
  return *this;
}

ExpertCache::ExpertCache(std::unique_ptr<ExpertFile> file, int experts, int capacity, CachePolicy policy, bool async,
                         std::shared_ptr<Prefetcher> io, int stream_slots)
    : file_(std::move(file)), experts_(experts), policy_(policy), async_(async), io_(std::move(io)),
      stream_slots_(std::max(1, std::min(stream_slots, capacity))) {
  if (capacity < 1) throw_option("offload.capacity must hold at least one expert");
  if (async_ && !io_) io_ = std::make_shared<Prefetcher>();
  slots_.resize(size_t(std::min(capacity, experts)));
  const ExpertFileShape& shape = file_->shape();
  arena_.allocate(shape.dtype, shape.hidden, shape.intermediate, int(slots_.size()));
  for (size_t s = 0; s < slots_.size(); ++s) {
    arena_.bind(slots_[s].w, int(s));
    file_->init_slot(slots_[s].w);
  }
  slot_of_.assign(size_t(experts), -1);
  usage_.resize(size_t(experts));
  static_.assign(size_t(experts), 0);
}

ExpertCache::~ExpertCache() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return inflight_ == 0; });
}

int ExpertCache::take_slot_locked(const std::vector<char>* protect) {
  for (size_t s = 0; s < slots_.size(); ++s)
    if (slots_[s].state == State::Empty) return int(s);
  int best = -1;
  for (size_t s = 0; s < slots_.size(); ++s) {
    const Slot& c = slots_[s];
    if (c.state != State::Ready || c.pinned || static_[size_t(c.expert)]) continue;
    if (protect && (*protect)[size_t(c.expert)]) continue;
    if (best < 0 || evict_before(policy_, usage_[size_t(c.expert)], c.expert, usage_[size_t(slots_[best].expert)],
                                 slots_[best].expert, pass_))
      best = int(s);
  }
  if (best >= 0) {
    Slot& v = slots_[size_t(best)];
    slot_of_[size_t(v.expert)] = -1;
    v.expert = -1;
    v.state = State::Empty;
    v.prefetched = false;
    ++stats_.evictions;
  }
  return best;
}

void ExpertCache::start_load_locked(int s, int e, bool prefetched) {
  Slot& slot = slots_[size_t(s)];
  slot.expert = e;
  slot.state = State::Loading;
  slot.prefetched = prefetched;
  slot_of_[size_t(e)] = s;
  ++inflight_;
  if (!async_) {
    sync_loads_.push_back(s);
    return;
  }
  ExpertWeights* w = &slot.w;
  // The I/O threads only read: the checksum is checked by the compute thread that takes the
  // expert (next_ready), so the I/O threads go straight on to the next read.
  io_->submit([this, s, e, w] { load_slot(s, e, w, false); }, [this, e] { file_->advise_willneed(e); });
}

void ExpertCache::finish_load(int s, int e, size_t bytes, std::exception_ptr err, bool verified) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --inflight_;
    Slot& slot = slots_[size_t(s)];
    // Busy time is the union of the reads' intervals: several I/O threads read at once.
    if (--reading_ == 0) stats_.io_ns += now_ns() - reading_since_;
    if (err) {
      if (slot.pinned && !error_) error_ = err;
      slot.state = State::Empty;
      slot.expert = -1;
      slot.pinned = slot.prefetched = false;
      slot_of_[size_t(e)] = -1;
    } else {
      ++stats_.loads;
      stats_.bytes_read += double(bytes);
      slot.state = State::Ready;
      slot.verified = verified;
      if (slot.pinned) ready_.push_back(e);
    }
    // Under the lock: once inflight_ reaches 0 the destructor may run as soon as we unlock.
    cv_.notify_all();
  }
}

void ExpertCache::issue_pending_locked() {
  size_t i = 0;
  for (; i < pending_.size(); ++i) {
    const int s = take_slot_locked(nullptr);
    if (s < 0) break;
    slots_[size_t(s)].pinned = true;
    start_load_locked(s, pending_[i], false);
  }
  pending_.erase(pending_.begin(), pending_.begin() + long(i));
}

void ExpertCache::begin_pass(const std::vector<int>& needed) {
  std::lock_guard<std::mutex> lock(mutex_);
  in_pass_ = true;
  ++pass_;
  ++stats_.passes;
  error_ = nullptr;
  pending_.clear();
  ready_.clear();
  sync_loads_.clear();
  outstanding_ = (int)needed.size();
  for (int e : needed) {
    note_use(usage_[size_t(e)], ++tick_, pass_);
    const int s = slot_of_[size_t(e)];
    if (s < 0) {
      ++stats_.misses;
      pending_.push_back(e);
      continue;
    }
    Slot& slot = slots_[size_t(s)];
    ++stats_.hits;
    slot.pinned = true;
    if (slot.prefetched) {
      ++stats_.prefetch_used;
      slot.prefetched = false;
    }
    if (slot.state == State::Ready) ready_.push_back(e);
  }
  issue_pending_locked();
}

void ExpertCache::next_ready(std::vector<Ready>& batch, bool wait) {
  batch.clear();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (error_) std::rethrow_exception(error_);
    issue_pending_locked();
    if (!ready_.empty()) {
      // While misses wait for a slot, hand out a few experts at a time: each computed batch is
      // released at once, so slots come free early and the I/O threads do not sit idle while one
      // large batch of resident experts computes (prefill with a cache smaller than the pass).
      size_t take = ready_.size();
      if (!pending_.empty()) take = std::min(take, size_t(kBatchWhileWaiting));
      for (size_t i = 0; i < take; ++i) batch.push_back({ready_[i], &slots_[size_t(slot_of_[size_t(ready_[i])])].w});
      outstanding_ -= (int)take;
      ready_.erase(ready_.begin(), ready_.begin() + long(take));
      ++stats_.waves;
      verify_batch_locked(lock, batch);
      return;
    }
    if (outstanding_ == 0 || !wait) return;
    const int64_t t0 = now_ns();
    if (!sync_loads_.empty()) {
      // No prefetch: the compute thread reads the miss itself (nothing overlaps it).
      const int s = sync_loads_.front();
      sync_loads_.erase(sync_loads_.begin());
      const int e = slots_[size_t(s)].expert;
      ExpertWeights* w = &slots_[size_t(s)].w;
      lock.unlock();
      load_slot(s, e, w, true);
      lock.lock();
      stats_.stall_ns += now_ns() - t0;
      continue;
    }
    cv_.wait(lock);
    stats_.stall_ns += now_ns() - t0;
  }
}

// Reads expert e into slot s and records the outcome: on the I/O thread, or on the compute thread
// when prefetch is off.
void ExpertCache::load_slot(int s, int e, ExpertWeights* w, bool verify) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (reading_++ == 0) reading_since_ = now_ns();
  }
  size_t bytes = 0;
  std::exception_ptr err;
  try {
    bytes = file_->read_expert(e, *w, verify);
  } catch (...) {
    err = std::current_exception();
  }
  finish_load(s, e, bytes, err, verify);
}

// Checks the checksums of the batch's experts not checked since their load, outside the lock
// (the batch's slots are pinned: nobody evicts or reloads them meanwhile). A corrupt expert is
// dropped from its slot and fails the pass before any of the batch is computed.
void ExpertCache::verify_batch_locked(std::unique_lock<std::mutex>& lock, const std::vector<Ready>& batch) {
  std::vector<int> todo;
  for (const Ready& r : batch)
    if (!slots_[size_t(slot_of_[size_t(r.expert)])].verified) todo.push_back(r.expert);
  if (todo.empty()) return;
  lock.unlock();
  const int64_t t0 = now_ns();
  std::exception_ptr err;
  int bad = -1;
  for (int e : todo) {
    try {
      file_->verify_expert(e, slots_[size_t(slot_of_[size_t(e)])].w);  // slot_of_[e] is fixed while pinned
    } catch (...) {
      err = std::current_exception();
      bad = e;
      break;
    }
  }
  lock.lock();
  stats_.verify_ns += now_ns() - t0;
  for (int e : todo) {
    if (e == bad) break;
    slots_[size_t(slot_of_[size_t(e)])].verified = true;
  }
  if (err) {
    Slot& slot = slots_[size_t(slot_of_[size_t(bad)])];
    slot_of_[size_t(bad)] = -1;
    slot.expert = -1;
    slot.state = State::Empty;
    slot.pinned = slot.prefetched = slot.verified = false;
    error_ = err;
    std::rethrow_exception(err);
  }
}

void ExpertCache::release(const std::vector<Ready>& batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Ready& r : batch) slots_[size_t(slot_of_[size_t(r.expert)])].pinned = false;
  issue_pending_locked();
}

void ExpertCache::end_pass() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int s : sync_loads_) {  // never started: give the slots back
    Slot& slot = slots_[size_t(s)];
    slot_of_[size_t(slot.expert)] = -1;
    slot.expert = -1;
    slot.state = State::Empty;
    --inflight_;
  }
  for (auto& s : slots_) s.pinned = false;
  sync_loads_.clear();
  pending_.clear();
  ready_.clear();
  outstanding_ = 0;
  in_pass_ = false;
  cv_.notify_all();
}

void ExpertCache::prefetch(const std::vector<int>& experts) {
  if (!async_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<char> protect(size_t(experts_), 0);
  for (int e : experts) protect[size_t(e)] = 1;
  int issued = 0;
  for (int e : experts) {
    if (issued >= (int)slots_.size()) break;
    if (slot_of_[size_t(e)] >= 0) continue;
    const int s = take_slot_locked(&protect);
    if (s < 0) break;
    start_load_locked(s, e, true);
    ++stats_.prefetch_issued;
    ++issued;
  }
}

std::vector<int> ExpertCache::pin_static() {
  std::lock_guard<std::mutex> lock(mutex_);
  return choose_static(usage_, std::max(0, (int)slots_.size() - stream_slots_), static_);
}

OffloadStats ExpertCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void ExpertCache::reset_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_ = OffloadStats();
}

std::vector<int> ExpertCache::resident() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int> r;
  for (auto& s : slots_)
    if (s.state == State::Ready) r.push_back(s.expert);
  std::sort(r.begin(), r.end());
  return r;
}

}  // namespace moecap
