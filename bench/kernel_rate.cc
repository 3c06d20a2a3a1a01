// One decode kernel (T = 1, K = 2048; the AVX-512 set, or the AVX2 one when built with
// -DKERNEL_RATE_ISA=avx2) on one thread, its rate in GB/s of packed bytes by
// thread CPU time, the best of `reps` calls: with the panels in L2 (~1 MB) that is the kernel's
// compute rate, the figure to set beside the read bandwidth (a T = 1 pass is compute-bound where
// threads × this rate is not well above it). Thread CPU time, not wall time, because the
// development VM shares its 2 cores: another process's share does not count against the kernel.
// Built and run by bench/kernel_rate.sh against the addon's kernel objects (build/Release).
// Weights: arbitrary codes with ordinary scales (no NaN codes, no subnormal scale products, which
// would time microcode assists instead of the kernel). fp8 codes: KERNEL_RATE_CODES=uniform (the
// default: 0..125, 8 of them E4M3 subnormals) or normal (Gaussian weights rounded to E4M3 with each
// lane's 128-k block scaled to ±448, as the checkpoints' block scales do: ~1e-4 subnormal codes).
//   kernel_rate <dtype> <panels> <reps>     dtype: fp8 bf16 int8 int4 mxfp4
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/linear_job.h"
#include "kernels/quant_panel_layout.h"

#ifndef KERNEL_RATE_ISA
#define KERNEL_RATE_ISA avx512
#endif

namespace moecap {
namespace KERNEL_RATE_ISA {
void linear_fp8(const LinearJob&);
void linear_bf16(const LinearJob&);
void linear_int8(const LinearJob&);
void linear_int4(const LinearJob&);
void linear_mxfp4(const LinearJob&);
}  // namespace KERNEL_RATE_ISA
}  // namespace moecap
using namespace moecap;

static double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// E4M3 code 0..126 → its value (sign 0).
static double e4m3_value(int c) {
  const int e = c >> 3, m = c & 7;
  return e ? std::ldexp(1.0 + m / 8.0, e - 7) : std::ldexp(m / 8.0, -6);
}

// Gaussian weights of each lane's 128-k blocks, max |w| of the block → 448, rounded to the nearest
// E4M3 code (sign in bit 7). The first 64 panels are drawn, the rest repeat them (the stream's rate
// does not depend on which codes repeat).
static void fill_fp8_normal(uint8_t* W, size_t panels, int K) {
  double value[127];
  for (int c = 0; c < 127; ++c) value[c] = e4m3_value(c);
  uint64_t s = 88172645463325252ull;
  const auto uniform = [&s] {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return (double(s >> 11) + 0.5) / 9007199254740992.0;
  };
  const size_t pb = size_t(K / kFp8Block) * kFp8BlockStride, drawn = std::min<size_t>(panels, 64);
  std::vector<double> w(kFp8Block);
  for (size_t p = 0; p < drawn; ++p)
    for (int b = 0; b < K / kFp8Block; ++b)
      for (int lane = 0; lane < 32; ++lane) {
        double mx = 0;
        for (double& v : w) {
          v = std::sqrt(-2 * std::log(uniform())) * std::cos(6.283185307179586 * uniform());
          mx = std::max(mx, std::fabs(v));
        }
        uint8_t* B = W + p * pb + size_t(b) * kFp8BlockStride;
        for (int k = 0; k < kFp8Block; ++k) {
          const double a = std::fabs(w[size_t(k)]) * 448 / mx;
          int c = int(std::lower_bound(value, value + 127, a) - value);  // value[c - 1] < a <= value[c]
          if (c == 127 || (c > 0 && a - value[c - 1] < value[c] - a)) --c;
          B[k * 32 + lane] = uint8_t(c | (w[size_t(k)] < 0 ? 0x80 : 0));
        }
      }
  for (size_t p = drawn; p < panels; ++p)
    for (int b = 0; b < K / kFp8Block; ++b)
      std::memcpy(W + p * pb + size_t(b) * kFp8BlockStride, W + (p % drawn) * pb + size_t(b) * kFp8BlockStride,
                  size_t(kFp8Block) * 32);
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: kernel_rate <fp8|bf16|int8|int4|mxfp4> <panels> <reps> [rows, 1-16]\n");
    return 2;
  }
  const std::string dtype = argv[1];
  const int K = 2048, panels = std::atoi(argv[2]), reps = std::atoi(argv[3]), n = argc == 5 ? std::atoi(argv[4]) : 1;
  size_t pb = 0;  // bytes per panel
  LinearFn fn = nullptr;
  if (dtype == "fp8") pb = size_t(K / kFp8Block) * kFp8BlockStride, fn = KERNEL_RATE_ISA::linear_fp8;
  else if (dtype == "bf16") pb = size_t(K) * 64, fn = KERNEL_RATE_ISA::linear_bf16;
  else if (dtype == "int8") pb = size_t(K / 32) * quant_block_stride(false), fn = KERNEL_RATE_ISA::linear_int8;
  else if (dtype == "int4") pb = size_t(K / 32) * quant_block_stride(true), fn = KERNEL_RATE_ISA::linear_int4;
  else if (dtype == "mxfp4") pb = size_t(K / 64) * kMx4PairStride, fn = KERNEL_RATE_ISA::linear_mxfp4;
  if (!fn || panels < 1 || reps < 1 || n < 1 || n > 16) {
    std::fprintf(stderr, "kernel_rate: bad arguments\n");
    return 2;
  }
  std::vector<uint8_t> buf(pb * size_t(panels) + 64);
  uint8_t* W = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
  for (size_t i = 0; i < pb * size_t(panels); ++i) W[i] = uint8_t(((i * 2654435761u) >> 13) % 0x7E);
  const char* codes_env = std::getenv("KERNEL_RATE_CODES");
  const std::string codes = codes_env ? codes_env : "uniform";
  if (codes != "uniform" && codes != "normal") {
    std::fprintf(stderr, "kernel_rate: KERNEL_RATE_CODES must be uniform or normal, not '%s'\n", codes.c_str());
    return 2;
  }
  if (dtype == "fp8" && codes == "normal") fill_fp8_normal(W, size_t(panels), K);
  // bf16: each value's high byte (sign and exponent) set to ±2^-7 .. 2^1, so no product with the
  // activation row is subnormal (the AVX2 kernel's FMAs would take assists on Intel, timing those).
  if (dtype == "bf16")
    for (size_t i = 1; i < pb * size_t(panels); i += 2) W[i] = uint8_t((0x3C + (W[i] & 3)) | ((W[i] & 4) << 5));
  for (int p = 0; p < panels; ++p) {
    uint8_t* P = W + size_t(p) * pb;
    const uint16_t half_scale = 0x1400;  // fp16 2^-10
    if (dtype == "fp8")
      for (int b = 0; b < K / kFp8Block; ++b)
        for (int j = 0; j < 32; ++j) const_cast<float*>(fp8_block_scales(P, b))[j] = 1e-3f;
    if (dtype == "int8" || dtype == "int4")
      for (int b = 0; b < K / 32; ++b)
        for (int j = 0; j < 32; ++j) quant_block_scales(P, dtype == "int4", b)[j] = half_scale;
    if (dtype == "mxfp4")
      for (int b = 0; b < K / 32; ++b) std::memset(const_cast<uint8_t*>(mx4_block_scales(P, b)), 120, 32);
  }
  // The activation row in the dtype's format (weights/activation_rows.h): fp32 (fp8), bf16, or
  // the int8 QuantRow (scale[nb], sum[nb], q[K]).
  alignas(64) static uint8_t row[16384];
  for (size_t i = 0; i < sizeof row; ++i) row[i] = uint8_t(i * 7);
  if (dtype == "fp8")
    for (int k = 0; k < K; ++k) reinterpret_cast<float*>(row)[k] = 0.01f * float(k % 13);
  if (dtype == "bf16")
    for (int k = 0; k < K; ++k) reinterpret_cast<uint16_t*>(row)[k] = uint16_t(0x3C00 + k % 13);
  if (dtype == "int8" || dtype == "int4" || dtype == "mxfp4")
    for (int b = 0; b < K / 32; ++b) {
      reinterpret_cast<float*>(row)[b] = 0.01f;
      reinterpret_cast<int32_t*>(row + 4 * (K / 32))[b] = 0;
    }
  // n rows (the prefill tiles) all read the one activation row; each has its own output.
  std::vector<float> out(size_t(n) * panels * 32);
  const void* rows[16];
  float* outs[16];
  for (int r = 0; r < n; ++r) rows[r] = row, outs[r] = out.data() + size_t(r) * panels * 32;
  LinearJob job;
  job.panels = W;
  job.panel_bytes = pb;
  job.K = K;
  job.p0 = 0;
  job.p1 = panels;
  job.n = n;
  job.rows = rows;
  job.out = outs;
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_seconds();
    fn(job);
    const double t = thread_seconds() - t0;
    if (t < best) best = t;
  }
  // GB/s of panel bytes per pass, whatever n (n rows: n times the multiply-adds on the same bytes).
  std::printf("%s %.2f MB %.1f GB/s (best of %d, thread CPU time, %d row%s)\n", dtype.c_str(), double(pb) * panels / 1e6,
              double(pb) * panels / best / 1e9, reps, n, n == 1 ? "" : "s");
  return 0;
}
