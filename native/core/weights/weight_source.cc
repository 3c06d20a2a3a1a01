#include "weights/weight_source.h"

#include <cmath>
#include <cstring>

#include "error.h"
#include "offload/xxhash64.h"

namespace moecap {

static inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void SeededWeights::row(Matrix m, int expert, int row, int cols, float* out) const {
  // Stream key per (matrix, expert, row): rows are independent, so packing can run in parallel.
  uint64_t key = splitmix64(seed_ ^ (uint64_t(int(m)) << 56) ^ (uint64_t(uint32_t(expert)) << 32) ^ uint32_t(row));
  // Sum of 4 uniforms on [0,1): mean 2, variance 4/12; rescale to unit variance, then fan-in.
  const float scale = float(std::sqrt(3.0) / std::sqrt(double(cols)));
  const float inv16 = 1.0f / 65536.0f;
  for (int c = 0; c < cols; ++c) {
    uint64_t r = splitmix64(key + uint64_t(c) * 0xD1B54A32D192ED03ull);
    float s = float(r & 0xFFFF) + float((r >> 16) & 0xFFFF) + float((r >> 32) & 0xFFFF) + float(r >> 48);
    out[c] = (s * inv16 - 2.0f) * scale;
  }
}

uint64_t SeededWeights::fingerprint() const { return xxhash64(&seed_, sizeof seed_, 0x5EED); }

uint64_t ExplicitWeights::fingerprint() const {
  XxHash64 h(0xE8);
  h.update(gate.data(), gate.size() * sizeof(float));
  h.update(up.data(), up.size() * sizeof(float));
  h.update(down.data(), down.size() * sizeof(float));
  return h.digest();
}

void ExplicitWeights::row(Matrix m, int expert, int r, int cols, float* out) const {
  const float* src = nullptr;
  const size_t H = hidden, F = intermediate, Fs = shared_intermediate;
  switch (m) {
    case Matrix::Router: src = router.data() + size_t(r) * H; break;
    case Matrix::Gate: src = gate.data() + (size_t(expert) * F + r) * H; break;
    case Matrix::Up: src = up.data() + (size_t(expert) * F + r) * H; break;
    case Matrix::Down: src = down.data() + (size_t(expert) * H + r) * F; break;
    case Matrix::SharedGate: src = shared_gate.data() + size_t(r) * H; break;
    case Matrix::SharedUp: src = shared_up.data() + size_t(r) * H; break;
    case Matrix::SharedDown: src = shared_down.data() + size_t(r) * Fs; break;
    case Matrix::SharedGateWeight:
      if (shared_gate_weight.empty()) throw_runtime("shared expert gate weight missing");
      src = shared_gate_weight.data();
      break;
  }
  std::memcpy(out, src, sizeof(float) * size_t(cols));
}

std::shared_ptr<const WeightSource> seed_or_arrays(std::shared_ptr<const WeightSource> src, int H, int F, int E, int Fs,
                                                   bool gated, bool routed_experts) {
  uint64_t seed;
  if (src->seed(&seed) || src->arrays()) return src;
  auto w = std::make_shared<ExplicitWeights>();
  w->hidden = H, w->intermediate = F, w->experts = E, w->shared_intermediate = Fs;
  auto fill = [&](std::vector<float>& out, Matrix m, int experts, int rows, int cols) {
    out.resize(size_t(experts) * size_t(rows) * size_t(cols));
    for (int e = 0; e < experts; ++e)
      for (int r = 0; r < rows; ++r) src->row(m, e, r, cols, out.data() + (size_t(e) * rows + r) * size_t(cols));
  };
  fill(w->router, Matrix::Router, 1, E, H);
  // Expert by expert (a checkpoint source reads an expert's three matrices at once).
  if (routed_experts) {
    w->gate.resize(size_t(E) * size_t(F) * size_t(H));
    w->up.resize(w->gate.size());
    w->down.resize(w->gate.size());
    for (int e = 0; e < E; ++e) {
      if (e + 1 < E) src->will_read_expert(e + 1);
      const size_t at = size_t(e) * size_t(F) * size_t(H);
      for (int f = 0; f < F; ++f) src->row(Matrix::Gate, e, f, H, w->gate.data() + at + size_t(f) * size_t(H));
      for (int f = 0; f < F; ++f) src->row(Matrix::Up, e, f, H, w->up.data() + at + size_t(f) * size_t(H));
      for (int h = 0; h < H; ++h) src->row(Matrix::Down, e, h, F, w->down.data() + at + size_t(h) * size_t(F));
    }
    src->done_reading_experts();
  }
  if (Fs > 0) {
    fill(w->shared_gate, Matrix::SharedGate, 1, Fs, H);
    fill(w->shared_up, Matrix::SharedUp, 1, Fs, H);
    fill(w->shared_down, Matrix::SharedDown, 1, H, Fs);
    if (gated) fill(w->shared_gate_weight, Matrix::SharedGateWeight, 1, 1, H);
  }
  return w;
}

}  // namespace moecap
