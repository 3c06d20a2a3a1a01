#include "weights/conversion_error.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "weights/block_quant.h"
#include "weights/numeric.h"

namespace moecap {

void measure_conversion_error(const float* v, uint64_t rows, int K, DType dtype, ConversionError* acc) {
  const int nb = (K + kQuantBlockSize - 1) / kQuantBlockSize;
  std::vector<int8_t> q(size_t(nb) * kQuantBlockSize);
  std::vector<uint16_t> sc(static_cast<size_t>(std::max(nb, 1)));
  std::vector<float> w(static_cast<size_t>(std::max(K, 1)));
  for (uint64_t r = 0; r < rows; ++r) {
    const float* x = v + r * uint64_t(K);
    switch (dtype) {
      case DType::F32: std::copy(x, x + K, w.begin()); break;
      case DType::BF16:
        for (int k = 0; k < K; ++k) w[k] = bf16_to_f32(f32_to_bf16(x[k]));
        break;
      case DType::I8:
      case DType::I4:
        if (dtype == DType::I8) quantise_block_int8(x, K, q.data(), sc.data());
        else quantise_block_int4(x, K, q.data(), sc.data());
        // The value the kernels multiply: level × fp16 scale, one fp32 product.
        for (int k = 0; k < K; ++k) w[k] = float(q[k]) * f16_to_f32(sc[k / kQuantBlockSize]);
        break;
    }
    for (int k = 0; k < K; ++k) {
      const double e = double(w[k]) - double(x[k]);
      acc->max_abs = std::max(acc->max_abs, std::fabs(e));
      acc->sum_sq_err += e * e;
      acc->sum_sq_ref += double(x[k]) * double(x[k]);
    }
    acc->values += uint64_t(K);
  }
}

}  // namespace moecap
