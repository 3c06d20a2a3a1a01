#include "experts/expert_arena.h"

#include "experts/expert_weights.h"
#include "runtime/checked_size.h"

namespace moecap {

void ExpertArena::allocate(DType dtype, int H, int F, int count) {
  dtype_ = dtype;
  hidden_ = H;
  intermediate_ = F;
  count_ = count;
  w13_bytes_ = checked_mul(ceil_div_size(F, 16), panel_bytes_for(dtype, H), "expert gate/up matrix");
  w2_bytes_ = expert_packed_bytes(dtype, H, F) - w13_bytes_;
  stride_ = checked_mul(ceil_div_size(w13_bytes_ + w2_bytes_, 4096), 4096, "expert arena stride");
  size_t total = checked_mul(stride_, size_t(count), "expert arena");
  // Whole huge pages: the last expert is then as well covered as the first.
  const size_t huge = size_t(2) << 20;
  if (total >= huge) total = (total + huge - 1) / huge * huge;
  buffer_.resize(total);
}

void ExpertArena::bind(ExpertWeights& w, int i) {
  uint8_t* base = buffer_.data() + size_t(i) * stride_;
  w.hidden = hidden_;
  w.intermediate = intermediate_;
  w.w13.data.view(base, w13_bytes_);
  w.w2.data.view(base + w13_bytes_, stride_ - w13_bytes_);  // the room to the next expert is readable
  w.w13.data.resize(w13_bytes_);
  w.w2.data.resize(w2_bytes_);
}

}  // namespace moecap
