// Portable kernels: plain loops, any CPU. Same packed layouts and activation formats as the
// SIMD kernels, so every ISA computes the same quantity (integer dot products are exact).
#include <cstring>

#include "kernels/epilogue_scalar.h"
#include "kernels/quant_panel_layout.h"
#include "kernels/kernel_table.h"
#include "weights/activation_rows.h"
#include "weights/numeric.h"

namespace moecap {
namespace {

void linear_f32(const LinearJob& job) {
  const int K = job.K;
  for (int p = job.p0; p < job.p1; ++p) {
    const float* W = reinterpret_cast<const float*>(job_panel(job, p));
    for (int r = 0; r < job.n; ++r) {
      const float* x = static_cast<const float*>(job.rows[r]);
      float acc[32] = {0};
      for (int k = 0; k < K; ++k) {
        const float xk = x[k];
        const float* w = W + size_t(k) * 32;
        for (int j = 0; j < 32; ++j) acc[j] += xk * w[j];
      }
      store_epilogue_scalar(job, r, p, acc);
    }
  }
}

void linear_bf16(const LinearJob& job) {
  const int K2 = (job.K + 1) / 2;
  for (int p = job.p0; p < job.p1; ++p) {
    const uint16_t* W = reinterpret_cast<const uint16_t*>(job_panel(job, p));
    for (int r = 0; r < job.n; ++r) {
      const uint16_t* x = static_cast<const uint16_t*>(job.rows[r]);
      float acc[32] = {0};
      for (int k2 = 0; k2 < K2; ++k2) {
        const float x0 = bf16_to_f32(x[2 * k2]), x1 = bf16_to_f32(x[2 * k2 + 1]);
        const uint16_t* w = W + size_t(k2) * 64;
        for (int j = 0; j < 32; ++j) acc[j] = (acc[j] + x1 * bf16_to_f32(w[2 * j + 1])) + x0 * bf16_to_f32(w[2 * j]);
      }
      store_epilogue_scalar(job, r, p, acc);
    }
  }
}

// int8 and int4 share the block loop; `Q4` selects the nibble layout and the +8 offset.
template <bool Q4>
void linear_quant(const LinearJob& job) {
  const int K = job.K, nb = (job.K + 31) / 32;
  const int offset = Q4 ? 8 : 128;
  for (int p = job.p0; p < job.p1; ++p) {
    const uint8_t* P = job_panel(job, p);
    for (int r = 0; r < job.n; ++r) {
      QuantRowView xr = quant_row_view(job.rows[r], K);
      float acc[32] = {0};
      for (int b = 0; b < nb; ++b) {
        const uint8_t* blk = quant_block(P, Q4, b);
        const uint16_t* scales = quant_block_scales(P, Q4, b);
        const int8_t* xq = xr.q + b * 32;
        for (int j = 0; j < 32; ++j) {
          int32_t dot = 0;
          for (int kk = 0; kk < 32; ++kk) {
            int w;
            if (Q4) {
              uint8_t byte = blk[(kk / 4) * 64 + (j & 15) * 4 + (kk % 4)];
              w = j < 16 ? (byte & 0x0F) : (byte >> 4);
            } else {
              w = blk[(kk / 4) * 128 + j * 4 + (kk % 4)];
            }
            dot += w * int32_t(xq[kk]);
          }
          dot -= offset * xr.sum[b];
          acc[j] += float(dot) * (f16_to_f32(scales[j]) * xr.scale[b]);
        }
      }
      store_epilogue_scalar(job, r, p, acc);
    }
  }
}

void quant_row(const float* x, int K, void* out) { make_activation_row(DType::I8, x, K, out); }

}  // namespace

const KernelTable& generic_kernels() {
  static const KernelTable t = {
      "generic", {linear_f32, linear_bf16, linear_quant<false>, linear_quant<true>}, quant_row};
  return t;
}

}  // namespace moecap
