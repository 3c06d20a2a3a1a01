// One SwiGLU expert, prepacked: w13 fuses gate and up (panel p = 16 gate rows | 16 up rows of
// f ∈ [16p, 16p+16), K = H), w2 is the down projection (panels of 32 output rows, K = F padded
// to 16, the padding rows are zero and meet zero activations).
#pragma once
#include "weights/packed_matrix.h"
#include "weights/weight_source.h"

namespace moecap {

struct ExpertWeights {
  int hidden = 0, intermediate = 0;
  PackedMatrix w13, w2;
  int f_padded() const { return (intermediate + 15) / 16 * 16; }
  size_t bytes() const { return w13.bytes() + w2.bytes(); }
};

// Packed size of one expert without building it (for memory checks and byte counts).
size_t expert_packed_bytes(DType dtype, int hidden, int intermediate);

void pack_expert(ExpertWeights& out, DType dtype, int hidden, int intermediate, const WeightSource& src, Matrix gate,
                 Matrix up, Matrix down, int expert, ThreadPool* pool);

}  // namespace moecap
