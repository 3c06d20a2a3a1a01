// What one expert-parallel pass puts on the wire, per row and per peer: the sizes the split
// forward (ep_forward.cc) packs and exchanges, and the planner (`moecap ep-plan`) counts with.
#pragma once
#include <cstddef>
#include <cstdint>

#include "int_math.h"
#include "weights/activation_rows.h"
#include "weights/dtype.h"

namespace moecap {

struct EpWireSizes {
  size_t activation_bytes;  // a row as the expert kernels consume it (fp32 rows are sent as they are)
  size_t record_bytes;      // one dispatched row: activation row + fp32 router weight, padded to 64 bytes
  size_t result_bytes;      // one expert output back: fp32, hidden padded to 32 (the kernels' row)
  int64_t counts_bytes;     // the per-expert row counts to one peer: int32 per expert
};

inline EpWireSizes ep_wire_sizes(DType dtype, int hidden, int experts) {
  EpWireSizes w;
  const size_t ab = activation_row_bytes(dtype, hidden);
  w.activation_bytes = ab ? ab : size_t(hidden) * sizeof(float);
  // Padded so every received row stays 64-byte aligned for the kernels.
  w.record_bytes = (w.activation_bytes + sizeof(float) + 63) / 64 * 64;
  w.result_bytes = size_t(round_up(hidden, 32)) * sizeof(float);
  w.counts_bytes = int64_t(experts) * int64_t(sizeof(int32_t));
  return w;
}

}  // namespace moecap
