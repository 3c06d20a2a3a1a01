// Portable ceilings: multiply-add chains in plain C++ (whatever the baseline x86-64 compiler makes
// of them, i.e. SSE2 without FMA) and a 64-bit streaming sum. No dot-product units.
#include "kernels/peak_loops.h"

namespace moecap {
namespace {

constexpr int kChains = 32;

float fma_f32(long iters) {
  volatile float va = 0.999f, vb = 1e-3f;
  const float a = va, b = vb;
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = float(i);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * a + b;
  float s = 0;
  for (int i = 0; i < kChains; ++i) s += acc[i];
  return s;
}

uint64_t read_sum(const void* p, size_t bytes) {
  const uint64_t* v = static_cast<const uint64_t*>(p);
  uint64_t s[8] = {0};
  for (size_t i = 0; i < bytes / 8; i += 8)
    for (int u = 0; u < 8; ++u) s[u] += v[i + u];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

}  // namespace

const PeakLoops& generic_peak_loops() {
  static const PeakLoops t = {"generic", fma_f32, kChains * 2.0, nullptr, 0, nullptr, 0, read_sum, nullptr};
  return t;
}

}  // namespace moecap
