// Token-choice routing for one token: scores (softmax | sigmoid) of fp32 logits, optional
// selection bias, optional grouped top-k (DeepSeek-V3 "noaux_tc": groups scored by their top-2
// sum; DeepSeek-V2 "group_limited_greedy": by their best expert), top-k with the lower expert
// index winning ties, then renormalisation and the routed scaling factor on the unbiased scores.
#pragma once
#include <cstdint>

#include "layer_config.h"

namespace moecap {

struct RouterParams {
  int experts = 0, top_k = 0;
  Scoring scoring = Scoring::Softmax;
  bool renormalize = true;
  float scaling = 1.0f;
  float jitter_eps = 0.01f;     // SparseMixer
  const float* bias = nullptr;  // [E] or null
  int group_count = 0, group_keep = 0;
  GroupScore group_score = GroupScore::Top2Sum;

  static RouterParams from(const LayerConfig& c) {
    RouterParams p;
    p.experts = c.experts;
    p.top_k = c.top_k;
    p.scoring = c.scoring;
    p.renormalize = c.renormalize;
    p.scaling = c.routed_scaling_factor;
    p.jitter_eps = c.jitter_eps;
    p.bias = c.selection_bias.empty() ? nullptr : c.selection_bias.data();
    p.group_count = c.group_count;
    p.group_keep = c.group_keep;
    p.group_score = c.group_score;
    return p;
  }
};

// scratch: at least 2·E + 2·group_count floats. Writes k ids (in selection order) and weights.
// Experts of dropped groups get a selection score of 0.0, as the DeepSeek modelling code's
// masked_fill(~mask, 0.0): with negative biases such an expert can outrank a kept one.
void route_token(const RouterParams& p, const float* logits, float* scratch, int32_t* ids, float* weights);
// The same in fp64, for the reference path.
void route_token(const RouterParams& p, const double* logits, double* scratch, int32_t* ids, double* weights);

}  // namespace moecap
