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
  std::vector<uint8_t> codes;
  std::vector<float> fsc;
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
      case DType::MXFP4:
        codes.resize(q.size() + size_t(nb));
        quantise_mxfp4(x, K, codes.data(), codes.data() + q.size());
        for (int k = 0; k < K; ++k)
          w[k] = float(e2m1_twice(codes[k])) * e8m0_half(codes[q.size() + k / kQuantBlockSize]);
        break;
      case DType::FP8: {
        const size_t nb8 = size_t((K + kFp8BlockSize - 1) / kFp8BlockSize);
        codes.resize(nb8 * kFp8BlockSize);
        fsc.resize(nb8);
        quantise_fp8(x, K, codes.data(), fsc.data());
        for (int k = 0; k < K; ++k) w[k] = e4m3_to_f32(codes[k]) * fsc[k / kFp8BlockSize];
        break;
      }
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
