#include "experts/expert_weights.h"

#include <algorithm>
#include <climits>
#include <string>

#include "runtime/checked_size.h"

namespace moecap {

size_t expert_packed_bytes(DType dtype, int H, int F) {
  // The down projection's K is F padded to 16, an int like every K.
  if (F > INT_MAX - 15)
    throw_range("intermediate = " + std::to_string(F) + " is too large to pack (at most " +
                std::to_string(INT_MAX - 15) + ")");
  const size_t w13 = checked_mul(ceil_div_size(F, 16), panel_bytes_for(dtype, H), "expert gate/up matrix");
  const size_t w2 =
      checked_mul(ceil_div_size(H, 32), panel_bytes_for(dtype, int(round_up_size(F, 16))), "expert down matrix");
  return checked_add(w13, w2, "expert");
}

// "expert 3, gate row 5" / "shared expert, down row 7": which master weight row a lane holds.
static std::string row_name(Matrix m, int expert, int row) {
  const bool shared = m == Matrix::SharedGate || m == Matrix::SharedUp || m == Matrix::SharedDown;
  const char* what = (m == Matrix::Gate || m == Matrix::SharedGate) ? "gate"
                     : (m == Matrix::Up || m == Matrix::SharedUp)   ? "up"
                                                                    : "down";
  return (shared ? std::string("shared expert") : "expert " + std::to_string(expert)) + ", " + what + " row " +
         std::to_string(row);
}

void pack_expert(ExpertWeights& out, DType dtype, int H, int F, const WeightSource& src, Matrix gate, Matrix up,
                 Matrix down, int e, ThreadPool* pool) {
  out.hidden = H;
  out.intermediate = F;
  const int w13_panels = int(ceil_div_size(F, 16)), w2_panels = int(ceil_div_size(H, 32));
  pack_matrix(
      out.w13, dtype, H, w13_panels,
      [&](int p, int lane, float* v) {
        int f = p * 16 + (lane & 15);
        if (f >= F) return false;
        src.row(lane < 16 ? gate : up, e, f, H, v);
        return true;
      },
      pool, [&](int p, int lane) { return row_name(lane < 16 ? gate : up, e, p * 16 + (lane & 15)); },
      [&](int p, int lane, uint8_t* codes, void* scales) {
        const int f = p * 16 + (lane & 15);
        if (f >= F) return kCodesAbsent;
        return src.stored_codes(lane < 16 ? gate : up, e, f, H, dtype, codes, scales) ? kCodesFilled
                                                                                      : kCodesUnavailable;
      });
  const int fp = out.f_padded();
  pack_matrix(
      out.w2, dtype, fp, w2_panels,
      [&](int p, int lane, float* v) {
        int h = p * 32 + lane;
        if (h >= H) return false;
        src.row(down, e, h, F, v);
        std::fill(v + F, v + fp, 0.0f);
        return true;
      },
      pool, [&](int p, int lane) { return row_name(down, e, p * 32 + lane); },
      // Codes past F stay zero (the buffer comes zeroed); the scale blocks are those of F's columns.
      [&](int p, int lane, uint8_t* codes, void* scales) {
        const int h = p * 32 + lane;
        if (h >= H) return kCodesAbsent;
        return src.stored_codes(down, e, h, F, dtype, codes, scales) ? kCodesFilled : kCodesUnavailable;
      });
}

}  // namespace moecap
