#include "experts/expert_weights.h"

#include <algorithm>

namespace moecap {

size_t expert_packed_bytes(DType dtype, int H, int F) {
  const int fp = (F + 15) / 16 * 16;
  return size_t((F + 15) / 16) * panel_bytes_for(dtype, H) + size_t((H + 31) / 32) * panel_bytes_for(dtype, fp);
}

void pack_expert(ExpertWeights& out, DType dtype, int H, int F, const WeightSource& src, Matrix gate, Matrix up,
                 Matrix down, int e, ThreadPool* pool) {
  out.hidden = H;
  out.intermediate = F;
  pack_matrix(out.w13, dtype, H, (F + 15) / 16,
              [&](int p, int lane, float* v) {
                int f = p * 16 + (lane & 15);
                if (f >= F) return false;
                src.row(lane < 16 ? gate : up, e, f, H, v);
                return true;
              },
              pool);
  const int fp = out.f_padded();
  pack_matrix(out.w2, dtype, fp, (H + 31) / 32,
              [&](int p, int lane, float* v) {
                int h = p * 32 + lane;
                if (h >= H) return false;
                src.row(down, e, h, F, v);
                std::fill(v + F, v + fp, 0.0f);
                return true;
              },
              pool);
}

}  // namespace moecap
