// Scalar epilogue shared by the portable kernels (and the AVX2 ones): applies the job's
// epilogue to the 32 accumulators of one (row, panel).
#pragma once
#include "kernels/kernel_table.h"
#include "weights/numeric.h"

namespace moecap {
constexpr int kEpiloguePanel = 32;
}

namespace moecap {

static inline void store_epilogue_scalar(const LinearJob& job, int r, int p, const float* acc) {
  float* y = job.out[r];
  switch (job.epilogue) {
    case Epilogue::Store:
      for (int j = 0; j < kEpiloguePanel; ++j) y[p * kEpiloguePanel + j] = acc[j];
      break;
    case Epilogue::Scaled: {
      float s = job.row_scale[r];
      for (int j = 0; j < kEpiloguePanel; ++j) y[p * kEpiloguePanel + j] = s * acc[j];
      break;
    }
    case Epilogue::SwiGLU:
      for (int j = 0; j < 16; ++j) y[p * 16 + j] = silu(acc[j]) * acc[16 + j];
      break;
    case Epilogue::GatedVariant: {
      const float s = job.row_scale ? job.row_scale[r] : 1.0f;
      const float* b = job.bias ? job.bias + size_t(p) * kEpiloguePanel : nullptr;
      for (int j = 0; j < 16; ++j) {
        float g = s * acc[j], u = s * acc[16 + j];
        if (b) {
          g += b[j];
          u += b[16 + j];
        }
        y[p * 16 + j] = gated_variant(g, u, job.clamp_limit, job.alpha);
      }
      break;
    }
    case Epilogue::ScaledBias: {
      const float s = job.row_scale[r];
      const float* b = job.bias + size_t(p) * kEpiloguePanel;
      for (int j = 0; j < kEpiloguePanel; ++j) y[p * kEpiloguePanel + j] = s * (acc[j] + b[j]);
      break;
    }
  }
}

}  // namespace moecap
