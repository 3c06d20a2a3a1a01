// One expert's rows of a checkpoint layer's expert matrices (gate, up, down), read in a few large
// positioned reads into one buffer and converted to fp32 row by row as packing asks for them. A
// read per row made conversion syscall-bound (0.12 of the disk's cold read rate); ranges of one
// file that touch or overlap (an expert's gate, up and down tensors side by side, GGUF's stacked
// gate|up, interleaved or transposed gate_up) are merged into one read.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "checkpoint/checkpoint_slice.h"
#include "weights/weight_source.h"

namespace moecap {

// Staging buffers handed back for the next expert: every expert of a layer needs the same bytes,
// so a layer's conversion allocates its few buffers once (freed and reallocated buffers of many
// MB fragment the allocator's arenas: peak RSS grew by 2.5 layers' worth of experts).
class StagingBuffers {
 public:
  std::vector<uint8_t> take();
  void give(std::vector<uint8_t>&& buf);
  void clear();

 private:
  std::mutex mu_;
  std::vector<std::vector<uint8_t>> free_;
};

class StagedExpert {
 public:
  // Reads expert `expert`'s rows of every expert matrix (Gate, Up, Down) of `matrices` into a
  // buffer from `buffers`. A file that ends early is ERR_CORRUPT_FILE naming it and the tensor;
  // an I/O error is ERR_IO.
  StagedExpert(const std::map<Matrix, CheckpointMatrix>& matrices, int expert, std::shared_ptr<StagingBuffers> buffers);
  ~StagedExpert();
  StagedExpert(const StagedExpert&) = delete;
  StagedExpert& operator=(const StagedExpert&) = delete;

  // Row `r` of the expert's matrix `m`, converted (a NaN/Inf is ERR_CORRUPT_FILE naming the
  // file, the tensor and the element). Thread-safe.
  void row(Matrix m, uint64_t r, float* out) const;
  // Row `r`'s bytes as the file stores them, when its piece holds it as one plain row (not
  // transposed, not split MXFP4, one tensor row a matrix row); nullptr otherwise. Thread-safe.
  const uint8_t* row_bytes(Matrix m, uint64_t r) const;
  uint64_t bytes() const { return buf_.size(); }

 private:
  // The expert's rows [first, first + count) of one matrix, held by one run from its row i0.
  struct Piece {
    const CheckpointRun* run;
    uint64_t first, count, i0;
    size_t at = 0, scales_at = 0;  // where its bytes (and split-MXFP4 scale bytes) lie in buf_
  };
  const Piece& piece(Matrix m, uint64_t r) const;  // the piece holding row r of m
  std::shared_ptr<StagingBuffers> buffers_;
  std::vector<uint8_t> buf_;
  std::map<Matrix, std::vector<Piece>> pieces_;
};

// Bytes the staged experts alive hold now, and the most they held since reset_staged_peak: what
// staging costs in memory on top of the packed experts.
struct StagedBytes {
  uint64_t now = 0, peak = 0;
};
StagedBytes staged_expert_bytes();
void reset_staged_peak();

// The staged experts of one layer: the last one read (packing's current expert), and background
// reads of the next ones (prefetch) so reading overlaps converting.
class ExpertStager {
 public:
  explicit ExpertStager(const std::map<Matrix, CheckpointMatrix>& matrices)
      : matrices_(matrices), buffers_(std::make_shared<StagingBuffers>()) {}
  ~ExpertStager();
  ExpertStager(const ExpertStager&) = delete;
  ExpertStager& operator=(const ExpertStager&) = delete;

  // The staged expert (read now unless held or in flight); rethrows its read's error. Thread-safe.
  std::shared_ptr<const StagedExpert> get(int expert);
  // Drops the staged experts and their buffers (waiting for a read in flight; queued reads are
  // dropped): packing is done. Later gets read again.
  void clear();
  // Queues `expert` for the background reader (a hint: its error surfaces in get). At most two
  // are queued or in flight, so at most three experts' bytes are held (the current one and the
  // next when packing in order, plus the one after while the current one is being replaced).
  void prefetch(int expert);

 private:
  struct Slot {
    int expert = -1;
    bool ready = false, used = false;  // read; asked for by get
    std::shared_ptr<const StagedExpert> staged;
    std::exception_ptr error;
  };
  static constexpr size_t kSlots = 1;             // ready experts kept
  std::shared_ptr<Slot> add_slot(int expert);     // most recent first; evicts the oldest ready beyond kSlots
  void stage(const std::shared_ptr<Slot>& slot);  // reads it (unlocked), then marks it ready
  void reader_loop();

  const std::map<Matrix, CheckpointMatrix>& matrices_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::shared_ptr<Slot>> slots_;
  std::shared_ptr<StagingBuffers> buffers_;
  std::deque<std::shared_ptr<Slot>> queued_;  // the background reader's next experts
  std::shared_ptr<Slot> reading_;             // the one it reads now
  std::thread reader_;
  bool stop_ = false;
};

}  // namespace moecap
