// The AVX2 fp8 kernel's two decodes (native/core/kernels/avx2/linear_avx2_fp8.cc: E4M3 → fp32 bits,
// or → fp16 bits then vcvtph2ps), whichever this CPU's fma_subnormals_slow() picks for the addon,
// each against an fp64 reference of the stored codes and scales, and against each other bit for
// bit. Panels are written in the packed layout (per 128-k block: [128][32] codes, then 32 fp32
// scales); codes are random E4M3 bytes over every non-NaN code (subnormals one in eight), or every
// code in turn; K and the panel count odd (partial blocks, a block of one input, a panel count not
// a multiple of the decode tile's 3), rows 1 (decode tiles) to 19 (prefill tiles), outputs poisoned
// with NaN. The two decodes give the same outputs when every product is in fp32's normal range in
// both (fp32 bits: x·2^e · w·2^-120, e from the row's max|x|), which activations of magnitude
// 2^-4 .. 2^1 guarantee; inputs spanning 2^-60 .. 2^60 are checked against the reference only.
// Built against the addon's AVX2 object by test/kernels/kernels_avx2.test.ts; exits non-zero on a
// failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "../../cuda/test/expect.h"
#include "kernels/linear_job.h"
#include "kernels/quant_panel_layout.h"

namespace moecap {
namespace avx2 {
void linear_fp8_fp32_bits(const LinearJob& job);
void linear_fp8_fp16_bits(const LinearJob& job);
bool fma_subnormals_slow();
}  // namespace avx2
}  // namespace moecap
using namespace moecap;

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
  double uniform() { return double(next() >> 11) / 9007199254740992.0; }
};

// E4M3 (bias 7; exponent 0: subnormal m·2^-9), exactly in a double.
static double e4m3(uint8_t c) {
  const int e = (c >> 3) & 15, m = c & 7;
  const double v = e ? std::ldexp(1.0 + m / 8.0, e - 7) : std::ldexp(m / 8.0, -6);
  return c & 0x80 ? -v : v;
}

struct Case {
  int K, panels, rows;
  bool every_code;   // codes 0..255 in turn (NaN codes skipped), else random
  bool wide_inputs;  // inputs 2^-60 .. 2^60 (reference only), else 2^-4 .. 2^1
};

// One case: fills panels and rows, runs both decodes, checks each against the reference and
// (narrow inputs) against each other.
static void run_case(const Case& c, uint64_t seed) {
  Rng rng{seed * 0x9E3779B97F4A7C15ull + 7};
  const int nb = (c.K + kFp8Block - 1) / kFp8Block;
  const size_t pb = size_t(nb) * kFp8BlockStride;
  std::vector<uint8_t> buf(pb * size_t(c.panels) + 64);
  uint8_t* W = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t(63));
  int next_code = 0;
  for (int p = 0; p < c.panels; ++p)
    for (int b = 0; b < nb; ++b) {
      uint8_t* B = W + size_t(p) * pb + size_t(b) * kFp8BlockStride;
      for (int i = 0; i < kFp8Block * 32; ++i) {
        uint8_t code;
        do code = uint8_t(c.every_code ? next_code++ : int(rng.next() >> 56));
        while ((code & 0x7F) == 0x7F);
        B[i] = code;  // the rows past K of a partial block are never read
      }
      float* S = reinterpret_cast<float*>(B + size_t(kFp8Block) * 32);
      for (int j = 0; j < 32; ++j) S[j] = float(std::ldexp(0.5 + rng.uniform(), -int(rng.next() % 12)));
    }
  std::vector<std::vector<float>> x(size_t(c.rows), std::vector<float>(size_t(c.K)));
  for (auto& row : x)
    for (float& v : row) {
      const double mag =
          c.wide_inputs ? std::ldexp(1.0, int(rng.next() % 121) - 60) : std::ldexp(1.0, -4 + int(rng.next() % 5));
      v = float((rng.uniform() < 0.5 ? -1 : 1) * mag * (1 + rng.uniform()));
    }
  // Reference, and the scale of each output's terms (Σ|x·w·s|) for a relative bound.
  const size_t outs = size_t(c.panels) * 32;
  std::vector<double> ref(size_t(c.rows) * outs), mag(ref.size());
  for (int r = 0; r < c.rows; ++r)
    for (int p = 0; p < c.panels; ++p)
      for (int j = 0; j < 32; ++j) {
        double sum = 0, abs = 0;
        for (int k = 0; k < c.K; ++k) {
          const uint8_t* B = W + size_t(p) * pb + size_t(k / kFp8Block) * kFp8BlockStride;
          const double s = reinterpret_cast<const float*>(B + size_t(kFp8Block) * 32)[j];
          const double t = double(x[size_t(r)][size_t(k)]) * e4m3(B[(k % kFp8Block) * 32 + j]) * s;
          sum += t, abs += std::fabs(t);
        }
        ref[size_t(r) * outs + size_t(p) * 32 + size_t(j)] = sum;
        mag[size_t(r) * outs + size_t(p) * 32 + size_t(j)] = abs;
      }
  std::vector<float> got[2];
  const LinearFn fns[2] = {avx2::linear_fp8_fp32_bits, avx2::linear_fp8_fp16_bits};
  const char* names[2] = {"fp32 bits", "fp16 bits"};
  for (int d = 0; d < 2; ++d) {
    got[d].assign(size_t(c.rows) * outs, std::nanf(""));
    std::vector<const void*> rows(size_t(c.rows));
    std::vector<float*> out(size_t(c.rows));
    for (int r = 0; r < c.rows; ++r)
      rows[size_t(r)] = x[size_t(r)].data(), out[size_t(r)] = got[d].data() + size_t(r) * outs;
    LinearJob job;
    job.panels = W;
    job.panel_bytes = pb;
    job.K = c.K;
    job.p0 = 0;
    job.p1 = c.panels;
    job.n = c.rows;
    job.rows = rows.data();
    job.out = out.data();
    fns[d](job);
    for (size_t i = 0; i < got[d].size(); ++i) {
      const double err = std::fabs(double(got[d][i]) - ref[i]);
      // fp32 accumulation over at most K terms of one chain per block: K·2^-23 of Σ|terms|.
      EXPECT(std::isfinite(got[d][i]) && err <= 2e-7 * c.K * mag[i] + 1e-300,
             "%s K=%d panels=%d rows=%d: output %zu = %.9g, reference %.9g", names[d], c.K, c.panels, c.rows, i,
             double(got[d][i]), ref[i]);
    }
  }
  if (!c.wide_inputs)
    EXPECT(std::memcmp(got[0].data(), got[1].data(), got[0].size() * sizeof(float)) == 0,
           "K=%d panels=%d rows=%d: the two decodes differ", c.K, c.panels, c.rows);
}

int main() {
  const Case cases[] = {
      {129, 7, 1, false, false},  {257, 4, 1, false, false},  {1030, 9, 1, false, false},  {300, 3, 2, false, false},
      {4100, 5, 1, false, false}, {129, 5, 19, false, false}, {385, 2, 4, false, false},   {1, 3, 1, false, false},
      {256, 6, 1, true, false},   {256, 2, 5, true, false},   {640, 8, 1, false, true},    {640, 2, 3, false, true},
      {2049, 3, 1, false, false}, {128, 1, 1, true, false},   {1000, 4, 16, false, false},
  };
  int n = 0;
  for (const Case& c : cases)
    for (uint64_t seed = 1; seed <= 2; ++seed) run_case(c, seed), ++n;
  std::printf("ok   both decodes against the fp64 reference and each other: %d cases\n", n);
  std::printf("this CPU's addon decodes fp8 via %s (fma_subnormals_slow: %d)\n",
              avx2::fma_subnormals_slow() ? "fp16 bits" : "fp32 bits", int(avx2::fma_subnormals_slow()));
  std::printf("all %d checks passed\n", g_checks);
  return 0;
}
