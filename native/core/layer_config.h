// Shape and behaviour of one MoE layer (the README's *API* section lists the options).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "weights/dtype.h"

namespace moecap {

// SparseMixer: Phi-3.5-MoE's top-2 rule at inference (router/router_topk.h).
enum class Scoring { Softmax, Sigmoid, SparseMixer };
// How grouped top-k scores a group: sum of its two best selection scores (DeepSeek-V3 noaux_tc)
// or its best one (DeepSeek-V2 group_limited_greedy).
enum class GroupScore { Top2Sum, Max };

struct LayerConfig {
  int hidden = 0;        // H
  int intermediate = 0;  // F, per routed expert
  int experts = 0;       // E
  int top_k = 0;         // k
  Scoring scoring = Scoring::Softmax;
  bool renormalize = true;  // (not used by SparseMixer)
  float routed_scaling_factor = 1.0f;
  float jitter_eps = 0.01f;           // SparseMixer's mask threshold (Phi-3.5-MoE router_jitter_noise)
  std::vector<float> selection_bias;  // [E] or empty; affects selection only
  int group_count = 0;                // 0 = plain top-k
  int group_keep = 0;
  GroupScore group_score = GroupScore::Top2Sum;
  int shared_intermediate = 0;  // 0 = no shared expert
  bool shared_gated = false;    // Qwen-style sigmoid(x·g) gate on the shared expert
  // Expert variants of the families that need them (empty / 0 / false = the plain SwiGLU expert).
  std::vector<float> router_bias;         // [E] added to the logits (gpt-oss), for selection and weights
  std::vector<float> gate_bias, up_bias;  // [E·F] per-expert biases of gate and up (gpt-oss)
  std::vector<float> down_bias;           // [E·H] per-expert bias of down, before the routing weight
  // gpt-oss clamped SwiGLU: g = min(gate, limit), u = clamp(up, ±limit), h = (u + 1)·g·σ(α·g).
  float swiglu_limit = 0;  // 0 = plain SwiGLU h = silu(gate)·up
  float swiglu_alpha = 1.0f;
  // Llama 4: the routed expert's input is x·score and its output is not scaled. Applied to the
  // gate/up accumulators (s·(x·W) = (s·x)·W), so the activation rows stay shared by all choices.
  bool score_on_input = false;
  double capacity_factor = 0;  // 0 = unlimited
  int threads = 0;             // 0 = all hardware threads
  bool pin_threads = true;     // pin the pool's threads when it uses every CPU (runtime/thread_pool.h)
  DType dtype = DType::F32;
  bool poison = false;  // fill workspaces with NaN before each pass (tests: catches unwritten rows)
};

// Throws moecap::Error naming the offending field when the config is inconsistent.
void validate_config(const LayerConfig& c);

// Expert capacity C = ceil(cf·T·k/E), or INT32_MAX when there is no capacity limit.
int64_t expert_capacity(const LayerConfig& c, int64_t tokens);

}  // namespace moecap
