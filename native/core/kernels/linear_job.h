// The job a linear kernel runs: plain data only. ISA translation units (compiled with -mavx512*
// or -mavx2) include nothing but this, intrinsics and static-inline helpers, so no inline or
// template function compiled for a higher ISA can be merged by the linker into the portable code.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace moecap {

enum class Epilogue {
  Store,   // y[r][32p + j] = acc
  SwiGLU,  // panel = [16 gate | 16 up]: y[r][16p + j] = silu(g_j) · u_j
  Scaled,  // y[r][32p + j] = row_scale[r] · acc
  // The expert variants (layer_config.h). bias: 32 floats per panel in the panel's row order.
  //   GatedVariant: g = s·acc_g + b_g, u = s·acc_u + b_u (s = row_scale[r], 1 when null), then
  //     clamp_limit == 0: y = silu(g)·u;  else y = (clamp(u, ±limit) + 1)·g'·σ(α·g'), g' = min(g, limit)
  //   ScaledBias: y[r][32p + j] = row_scale[r] · (acc + bias[32p + j])
  GatedVariant,
  ScaledBias,
};

// Activation rows in the format the weight dtype wants (see weights/activation_rows.h):
// f32 → float[K]; bf16 → uint16[K rounded to even]; int8/int4 → quantised rows.
struct LinearJob {
  const uint8_t* panels = nullptr;  // panel p starts at panels + p·panel_bytes
  size_t panel_bytes = 0;
  int K = 0;                          // input length
  int p0 = 0, p1 = 0;                 // panels [p0, p1)
  int n = 0;                          // activation rows
  const void* const* rows = nullptr;  // n row pointers
  float* const* out = nullptr;        // n output row pointers (column 0 of the matrix output)
  Epilogue epilogue = Epilogue::Store;
  const float* row_scale = nullptr;  // [n], for Epilogue::Scaled (and the variants)
  const float* bias = nullptr;       // the variants: 32 per panel, or null (GatedVariant)
  float clamp_limit = 0, alpha = 1;  // GatedVariant
};

using LinearFn = void (*)(const LinearJob&);

static inline const uint8_t* job_panel(const LinearJob& j, int p) { return j.panels + size_t(p) * j.panel_bytes; }

}  // namespace moecap
