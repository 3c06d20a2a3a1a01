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

// The integer block-32 formats share the block loop: int8 (u8 = q + 128), int4 (nibble = q + 8),
// mxfp4 (nibble = E2M1 code, weight = 2·value + 12 from the table, so the integer dot is exact
// like the others and the offset comes off with the row's block sum).
template <QuantFormat F>
void linear_quant(const LinearJob& job) {
  constexpr bool kNibbles = F != QuantFormat::Int8;
  const int K = job.K, nb = (job.K + 31) / 32;
  const int offset = F == QuantFormat::Int8 ? 128 : F == QuantFormat::Int4 ? 8 : 12;
  for (int p = job.p0; p < job.p1; ++p) {
    const uint8_t* P = job_panel(job, p);
    for (int r = 0; r < job.n; ++r) {
      QuantRowView xr = quant_row_view(job.rows[r], K);
      float acc[32] = {0};
      for (int b = 0; b < nb; ++b) {
        const uint8_t* blk = F == QuantFormat::Mx4 ? mx4_block(P, b) : quant_block(P, kNibbles, b);
        const int8_t* xq = xr.q + b * 32;
        for (int j = 0; j < 32; ++j) {
          int32_t dot = 0;
          for (int kk = 0; kk < 32; ++kk) {
            int w;
            if (kNibbles) {
              uint8_t byte = blk[(kk / 4) * 64 + (j & 15) * 4 + (kk % 4)];
              w = j < 16 ? (byte & 0x0F) : (byte >> 4);
              if (F == QuantFormat::Mx4) w = e2m1_twice(uint8_t(w)) + 12;
            } else {
              w = blk[(kk / 4) * 128 + j * 4 + (kk % 4)];
            }
            dot += w * int32_t(xq[kk]);
          }
          dot -= offset * xr.sum[b];
          const float sw = F == QuantFormat::Mx4 ? e8m0_half(mx4_block_scales(P, b)[j])
                                                 : f16_to_f32(quant_block_scales(P, kNibbles, b)[j]);
          acc[j] += float(dot) * (sw * xr.scale[b]);
        }
      }
      store_epilogue_scalar(job, r, p, acc);
    }
  }
}

// fp8 × f32 activations: per block of 128 inputs a partial sum of x·(value·2^-8) (the decoded
// fp16, exactly), then acc += partial · (scale · 2^8).
void linear_fp8(const LinearJob& job) {
  const int K = job.K, nb = (K + kFp8Block - 1) / kFp8Block;
  for (int p = job.p0; p < job.p1; ++p) {
    const uint8_t* P = job_panel(job, p);
    for (int r = 0; r < job.n; ++r) {
      const float* x = static_cast<const float*>(job.rows[r]);
      float acc[32] = {0};
      for (int b = 0; b < nb; ++b) {
        const uint8_t* blk = fp8_block(P, b);
        const int n = K - b * kFp8Block < kFp8Block ? K - b * kFp8Block : kFp8Block;
        float part[32] = {0};
        for (int kk = 0; kk < n; ++kk) {
          const float xk = x[b * kFp8Block + kk];
          for (int j = 0; j < 32; ++j) part[j] += xk * f16_to_f32(e4m3_f16_scaled(blk[kk * 32 + j]));
        }
        const float* s = fp8_block_scales(P, b);
        for (int j = 0; j < 32; ++j) acc[j] += part[j] * (s[j] * 256.0f);
      }
      store_epilogue_scalar(job, r, p, acc);
    }
  }
}

void quant_row(const float* x, int K, void* out) { make_activation_row(DType::I8, x, K, out); }

}  // namespace

const KernelTable& generic_kernels() {
  static const KernelTable t = {"generic",
                                {linear_f32, linear_bf16, linear_quant<QuantFormat::Int8>,
                                 linear_quant<QuantFormat::Int4>, linear_quant<QuantFormat::Mx4>, linear_fp8},
                                quant_row};
  return t;
}

}  // namespace moecap
