#include "checkpoint/expert_staging.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "error.h"

namespace moecap {

namespace {

std::atomic<uint64_t> g_staged_now{0}, g_staged_peak{0};

void add_staged(uint64_t n) {
  const uint64_t now = g_staged_now.fetch_add(n) + n;
  uint64_t peak = g_staged_peak.load();
  while (now > peak && !g_staged_peak.compare_exchange_weak(peak, now)) {
  }
}

// One byte range a piece needs: `scales` for a split-MXFP4 piece's scale bytes.
struct Extent {
  int fd;
  const std::string* file;
  std::string tensor;
  uint64_t begin, end;
  size_t piece;
  Matrix m;
  bool scales;
};

}  // namespace

std::vector<uint8_t> StagingBuffers::take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) return {};
  std::vector<uint8_t> b = std::move(free_.back());
  free_.pop_back();
  return b;
}

void StagingBuffers::give(std::vector<uint8_t>&& buf) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(buf));
}

void StagingBuffers::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  free_.clear();
}

StagedBytes staged_expert_bytes() { return {g_staged_now.load(), g_staged_peak.load()}; }
void reset_staged_peak() { g_staged_peak.store(g_staged_now.load()); }

StagedExpert::StagedExpert(const std::map<Matrix, CheckpointMatrix>& matrices, int expert,
                           std::shared_ptr<StagingBuffers> buffers)
    : buffers_(std::move(buffers)), buf_(buffers_->take()) {
  // 1. The pieces of each expert matrix, and the byte ranges they need.
  std::vector<Extent> extents;
  for (Matrix m : {Matrix::Gate, Matrix::Up, Matrix::Down}) {
    auto it = matrices.find(m);
    if (it == matrices.end()) continue;
    const CheckpointMatrix& mx = it->second;
    const uint64_t lo = uint64_t(expert) * mx.rows_per_expert, hi = lo + mx.rows_per_expert;
    std::vector<Piece>& pieces = pieces_[m];
    for (const CheckpointRun& run : mx.runs) {
      const CheckpointSlice& sl = run.slice;
      const uint64_t b = std::max(lo, run.first_row), e = std::min(hi, run.first_row + sl.rows);
      if (b >= e) continue;
      const uint64_t i0 = b - run.first_row, i1 = e - run.first_row;
      pieces.push_back({&run, b - lo, e - b, i0});
      const size_t k = pieces.size() - 1;
      const uint64_t rb = sl.row_bytes();
      if (sl.transposed) {  // every matrix row needs every tensor row of the slab
        extents.push_back({run.fd, &sl.file, sl.tensor, sl.offset, sl.offset + sl.cols * rb, k, m, false});
        continue;
      }
      const uint64_t t0 = i0 * sl.row_step, t1 = (i1 - 1) * sl.row_step + 1;  // tensor rows from tensor_row
      extents.push_back({run.fd, &sl.file, sl.mx_split ? sl.tensor + "_blocks" : sl.tensor, sl.offset + t0 * rb,
                         sl.offset + t1 * rb, k, m, false});
      if (sl.mx_split) {
        const uint64_t sb = sl.scale_row_bytes();
        extents.push_back({run.mx_scales_fd, &sl.mx_scales_file, sl.tensor + "_scales", sl.mx_scales_offset + t0 * sb,
                           sl.mx_scales_offset + t1 * sb, k, m, true});
      }
    }
  }
  // 2. Ranges of one file that touch or overlap become one read, in file order.
  std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) {
    return *a.file != *b.file ? *a.file < *b.file : a.begin < b.begin;
  });
  struct Read {
    size_t first_extent, extents;
    uint64_t begin, end;
    size_t at;
  };
  std::vector<Read> reads;
  size_t total = 0;
  for (size_t i = 0; i < extents.size(); ++i) {
    const Extent& x = extents[i];
    if (!reads.empty()) {
      Read& r = reads.back();
      const Extent& prev = extents[r.first_extent];
      if (*prev.file == *x.file && x.begin <= r.end) {
        if (x.end > r.end) {
          total += size_t(x.end - r.end);
          r.end = x.end;
        }
        r.extents++;
        continue;
      }
    }
    reads.push_back({i, 1, x.begin, x.end, total});
    total += size_t(x.end - x.begin);
  }
  // 3. The reads, then each piece's place in the buffer.
  buf_.resize(total);  // a reused buffer of the same size: no fill
  add_staged(buf_.size());
  struct Uncount {  // a failed read gives its buffer back through the destructor, which does not run
    StagedExpert* self;
    ~Uncount() {
      if (self) {
        g_staged_now.fetch_sub(self->buf_.size());
        self->buffers_->give(std::move(self->buf_));
      }
    }
  } uncount{this};
  for (const Read& r : reads) {
    const Extent& head = extents[r.first_extent];
    const uint64_t got = read_checkpoint_bytes(head.fd, *head.file, r.begin, r.end - r.begin, buf_.data() + r.at);
    for (size_t i = r.first_extent; i < r.first_extent + r.extents; ++i) {
      const Extent& x = extents[i];
      if (x.end > r.begin + got)
        throw_corrupt("checkpoint file " + *x.file + " ends inside tensor " + x.tensor + " (truncated)");
      Piece& p = pieces_[x.m][x.piece];
      (x.scales ? p.scales_at : p.at) = r.at + size_t(x.begin - r.begin);
    }
  }
  uncount.self = nullptr;
}

StagedExpert::~StagedExpert() {
  g_staged_now.fetch_sub(buf_.size());
  buffers_->give(std::move(buf_));
}

const StagedExpert::Piece& StagedExpert::piece(Matrix m, uint64_t r) const {
  auto it = pieces_.find(m);
  if (it == pieces_.end()) throw_runtime("staged expert: matrix " + std::to_string(int(m)) + " was not staged");
  const std::vector<Piece>& pieces = it->second;
  auto p = std::upper_bound(pieces.begin(), pieces.end(), r, [](uint64_t v, const Piece& x) { return v < x.first; });
  if (p == pieces.begin() || r >= (p - 1)->first + (p - 1)->count)
    throw_runtime("staged expert: row " + std::to_string(r) + " past the expert's rows");
  return *(p - 1);
}

const uint8_t* StagedExpert::row_bytes(Matrix m, uint64_t r) const {
  const Piece& p = piece(m, r);
  const CheckpointSlice& sl = p.run->slice;
  if (sl.transposed || sl.mx_split || sl.row_step != 1) return nullptr;
  return buf_.data() + p.at + (r - p.first) * sl.row_bytes();
}

void StagedExpert::row(Matrix m, uint64_t r, float* out) const {
  const Piece* p = &piece(m, r);
  const CheckpointSlice& sl = p->run->slice;
  const uint64_t i = p->i0 + (r - p->first);  // row in the slice
  const uint8_t* base = buf_.data() + p->at;
  if (sl.transposed) {
    const uint64_t col = sl.col_start + i * sl.col_step, tc = sl.row_elements();
    convert_strided(sl.dtype, base + tensor_bytes(sl.dtype, col), sl.row_bytes(), sl.cols, out);
    for (uint64_t k = 0; k < sl.cols; ++k)
      if (!std::isfinite(out[k])) check_finite(out + k, 1, (sl.tensor_row + k) * tc + col, sl.file, sl.tensor, true);
    return;
  }
  const uint64_t di = (i - p->i0) * sl.row_step;  // tensor rows past the piece's first
  const uint64_t trow = sl.tensor_row + i * sl.row_step, first = trow * sl.cols;
  if (sl.mx_split) {
    decode_mxfp4_split(base + di * sl.row_bytes(), buf_.data() + p->scales_at + di * sl.scale_row_bytes(), sl.cols / 32,
                       out);
    check_finite(out, sl.cols, first, sl.file, sl.tensor, true);
    return;
  }
  convert_tensor_elements(sl.dtype, base + di * sl.row_bytes(), sl.cols, out, sl.file, sl.tensor, first, first != 0);
  if (p->run->scales) p->run->scales->apply(trow, 1, out, sl.tensor, sl.file);
}

ExpertStager::~ExpertStager() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (reader_.joinable()) reader_.join();
}

std::shared_ptr<ExpertStager::Slot> ExpertStager::add_slot(int expert) {
  auto slot = std::make_shared<Slot>();
  slot->expert = expert;
  slots_.push_front(slot);
  // The oldest used slots beyond kSlots go (a caller still using one keeps it alive through its
  // shared_ptr); slots still being read, or read ahead and not asked for yet, stay.
  size_t ready = 0;
  for (const auto& s : slots_) ready += s->ready && s->used ? 1 : 0;
  for (auto it = slots_.end(); ready > kSlots && it != slots_.begin();) {
    --it;
    if ((*it)->ready && (*it)->used) {
      it = slots_.erase(it);
      --ready;
    }
  }
  return slot;
}

void ExpertStager::stage(const std::shared_ptr<Slot>& slot) {
  std::shared_ptr<const StagedExpert> staged;
  std::exception_ptr error;
  try {
    staged = std::make_shared<const StagedExpert>(matrices_, slot->expert, buffers_);
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    slot->ready = true;
    slot->staged = std::move(staged);
    slot->error = error;
  }
  cv_.notify_all();
}

std::shared_ptr<const StagedExpert> ExpertStager::get(int expert) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it =
      std::find_if(slots_.begin(), slots_.end(), [&](const std::shared_ptr<Slot>& s) { return s->expert == expert; });
  std::shared_ptr<Slot> slot;
  if (it == slots_.end()) {
    slot = add_slot(expert);
    lock.unlock();
    stage(slot);
    lock.lock();
  } else {
    slot = *it;
    slots_.splice(slots_.begin(), slots_, it);  // most recently used first
  }
  slot->used = true;
  cv_.wait(lock, [&] { return slot->ready; });
  if (slot->error) std::rethrow_exception(slot->error);
  return slot->staged;
}

void ExpertStager::prefetch(int expert) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : slots_)
      if (s->expert == expert) return;
    if (queued_.size() + (reading_ ? 1 : 0) >= 2) return;
    queued_.push_back(add_slot(expert));
    if (!reader_.joinable()) reader_ = std::thread([this] { reader_loop(); });
  }
  cv_.notify_all();
}

void ExpertStager::clear() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (const auto& s : queued_) {  // not started: whoever waits for one gets an error, not a hang
      s->ready = true;
      s->error = std::make_exception_ptr(
          Error(ErrorKind::Runtime, ErrorCode::Internal, "staged expert read dropped (packing was done)"));
    }
    queued_.clear();
    cv_.wait(lock, [&] { return !reading_; });
    slots_.clear();
  }
  cv_.notify_all();
  buffers_->clear();
}

void ExpertStager::reader_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queued_.empty(); });
    if (stop_) return;
    reading_ = queued_.front();
    queued_.pop_front();
    lock.unlock();
    stage(reading_);
    lock.lock();
    reading_.reset();
    cv_.notify_all();
  }
}

}  // namespace moecap
