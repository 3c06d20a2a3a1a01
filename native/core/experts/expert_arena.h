// One allocation for the packed weights of many experts (all resident experts of a layer, or the
// slots of an offload cache): expert i's w13 then w2 at i·stride, the stride a multiple of 4 KiB.
// Why one buffer: its transparent huge pages then cover every expert completely (a separately
// allocated int4 OLMoE down projection is 1.2 MB, under one 2 MiB page, and streamed through 4 KiB
// pages where hardware prefetchers stop), and each expert's bytes are one contiguous, page-aligned
// extent, so a slot is filled from the weights file by a single O_DIRECT read.
#pragma once
#include <cstddef>

#include "experts/expert_weights.h"
#include "weights/aligned_buffer.h"

namespace moecap {

class ExpertArena {
 public:
  // Room for `count` experts of this shape; throws std::bad_alloc.
  void allocate(DType dtype, int hidden, int intermediate, int count);
  // Makes w's matrices views of expert i's extent (sizes set; contents as they are).
  void bind(ExpertWeights& w, int i);
  size_t stride() const { return stride_; }
  int count() const { return count_; }

 private:
  AlignedBuffer buffer_;
  DType dtype_ = DType::F32;
  int hidden_ = 0, intermediate_ = 0, count_ = 0;
  size_t w13_bytes_ = 0, w2_bytes_ = 0, stride_ = 0;
};

}  // namespace moecap
