// Token-choice routing for one token: scores (softmax | sigmoid) of fp32 logits, optional
// selection bias, optional grouped top-k (DeepSeek-V3 "noaux_tc"), top-k with the lower expert
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
  const float* bias = nullptr;  // [E] or null
  int group_count = 0, group_keep = 0;

  static RouterParams from(const LayerConfig& c) {
    RouterParams p;
    p.experts = c.experts;
    p.top_k = c.top_k;
    p.scoring = c.scoring;
    p.renormalize = c.renormalize;
    p.scaling = c.routed_scaling_factor;
    p.bias = c.selection_bias.empty() ? nullptr : c.selection_bias.data();
    p.group_count = c.group_count;
    p.group_keep = c.group_keep;
    return p;
  }
};

// scratch: at least 2·E + 2·group_count floats. Writes k ids (in selection order) and weights.
// Masked experts of dropped groups get a selection score of -inf.
void route_token(const RouterParams& p, const float* logits, float* scratch, int32_t* ids, float* weights);
// The same in fp64, for the reference path.
void route_token(const RouterParams& p, const double* logits, double* scratch, int32_t* ids, double* weights);

}  // namespace moecap
