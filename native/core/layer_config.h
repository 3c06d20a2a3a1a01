// Shape and behaviour of one MoE layer (the README's *API* section lists the options).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "weights/dtype.h"

namespace moecap {

enum class Scoring { Softmax, Sigmoid };
// How grouped top-k scores a group: sum of its two best selection scores (DeepSeek-V3 noaux_tc)
// or its best one (DeepSeek-V2 group_limited_greedy).
enum class GroupScore { Top2Sum, Max };

struct LayerConfig {
  int hidden = 0;        // H
  int intermediate = 0;  // F, per routed expert
  int experts = 0;       // E
  int top_k = 0;         // k
  Scoring scoring = Scoring::Softmax;
  bool renormalize = true;
  float routed_scaling_factor = 1.0f;
  std::vector<float> selection_bias;  // [E] or empty; affects selection only
  int group_count = 0;                // 0 = plain top-k
  int group_keep = 0;
  GroupScore group_score = GroupScore::Top2Sum;
  int shared_intermediate = 0;  // 0 = no shared expert
  bool shared_gated = false;    // Qwen-style sigmoid(x·g) gate on the shared expert
  double capacity_factor = 0;   // 0 = unlimited
  int threads = 0;              // 0 = all hardware threads
  bool pin_threads = true;      // pin the pool's threads when it uses every CPU (runtime/thread_pool.h)
  DType dtype = DType::F32;
  bool poison = false;  // fill workspaces with NaN before each pass (tests: catches unwritten rows)
};

// Throws moecap::Error naming the offending field when the config is inconsistent.
void validate_config(const LayerConfig& c);

// Expert capacity C = ceil(cf·T·k/E), or INT32_MAX when there is no capacity limit.
int64_t expert_capacity(const LayerConfig& c, int64_t tokens);

}  // namespace moecap
