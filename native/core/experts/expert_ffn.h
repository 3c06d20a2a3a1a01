// Grouped SwiGLU expert FFN over a routing plan's rows, in two parallel phases:
//   1. h = silu(x·W1ᵀ) ⊙ (x·W3ᵀ)   tasks = (expert, chunk of w13 panels)
//   2. out = scale · (h·W2ᵀ)         tasks = (expert, chunk of w2 panels)
// Every thread works on whichever (expert, column block) comes next, so one hot expert still
// keeps all cores busy, and each panel is streamed once per pass.
#pragma once
#include <vector>

#include "experts/expert_weights.h"
#include "kernels/kernel_table.h"

namespace moecap {

class ThreadPool;

struct ExpertRows {
  const ExpertWeights* w = nullptr;
  int n = 0;
  const void* const* in = nullptr;  // [n] activation rows in the dtype's format
  float* const* h = nullptr;        // [n] intermediate rows, f_padded() floats
  void* const* h_act = nullptr;     // [n] h re-encoded for the down kernel (null for f32)
  float* const* out = nullptr;      // [n] output rows, H padded to 32
  const float* scale = nullptr;     // [n] router weight, folded into the down epilogue (null: none)
  // Expert variants (layer_config.h); all null/0 = the plain SwiGLU expert.
  const float* in_scale = nullptr;   // [n] score applied to the input (Llama 4), on the gate/up sums
  const float* b13 = nullptr;        // gate/up bias, 32 per w13 panel (16 gate | 16 up)
  const float* b2 = nullptr;         // down bias, 32 per w2 panel
  float clamp_limit = 0, alpha = 1;  // gpt-oss clamped SwiGLU when clamp_limit > 0
  bool variant() const { return in_scale || b13 || clamp_limit != 0; }
};

void run_expert_ffn(ThreadPool& pool, const KernelTable& kernels, DType dtype, const std::vector<ExpertRows>& groups);

}  // namespace moecap
