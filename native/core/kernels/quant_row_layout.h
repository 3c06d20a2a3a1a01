// Byte layout of an activation row of the quantised formats (made by weights/activation_rows and
// the quant_row kernels): fp32 scale[nb], int32 sum[nb], int8 q[nb·32], nb = ceil(K/32). Plain
// data and a static-inline accessor only, so the ISA translation units may include it (see
// linear_job.h).
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace moecap {

struct QuantRowPtrs {
  const float* scale;
  const int32_t* sum;
  const int8_t* q;
};

static inline QuantRowPtrs quant_row_ptrs(const void* row, int nb) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  return {reinterpret_cast<const float*>(p), reinterpret_cast<const int32_t*>(p + 4 * size_t(nb)),
          reinterpret_cast<const int8_t*>(p + 8 * size_t(nb))};
}

}  // namespace moecap
