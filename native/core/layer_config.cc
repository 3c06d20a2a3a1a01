#include "layer_config.h"

#include <cmath>
#include <limits>

#include "error.h"

namespace moecap {

void validate_config(const LayerConfig& c) {
  auto positive = [](int v, const char* name) {
    if (v <= 0) throw_option(std::string(name) + " must be a positive integer, got " + std::to_string(v));
  };
  positive(c.hidden, "hidden");
  positive(c.intermediate, "intermediate");
  positive(c.experts, "experts");
  positive(c.top_k, "topK");
  if (c.top_k > c.experts)
    throw_option("topK (" + std::to_string(c.top_k) + ") must not exceed experts (" + std::to_string(c.experts) + ")");
  if (!std::isfinite(c.routed_scaling_factor) || c.routed_scaling_factor <= 0)
    throw_option("routedScalingFactor must be a finite positive number");
  if (!c.selection_bias.empty()) {
    if ((int)c.selection_bias.size() != c.experts)
      throw_option("selectionBias must have experts (" + std::to_string(c.experts) + ") elements, got " +
                   std::to_string(c.selection_bias.size()));
    for (size_t i = 0; i < c.selection_bias.size(); ++i)
      if (!std::isfinite(c.selection_bias[i])) throw_option("selectionBias[" + std::to_string(i) + "] is not finite");
  }
  if (c.group_count != 0 || c.group_keep != 0) {
    positive(c.group_count, "groups.count");
    positive(c.group_keep, "groups.keep");
    if (c.experts % c.group_count != 0)
      throw_option("groups.count (" + std::to_string(c.group_count) + ") must divide experts (" +
                   std::to_string(c.experts) + ")");
    if (c.group_keep > c.group_count)
      throw_option("groups.keep (" + std::to_string(c.group_keep) + ") must not exceed groups.count (" +
                   std::to_string(c.group_count) + ")");
    int selectable = c.group_keep * (c.experts / c.group_count);
    if (c.top_k > selectable)
      throw_option("topK (" + std::to_string(c.top_k) + ") exceeds the experts left by groups.keep (" +
                   std::to_string(selectable) + ")");
  }
  auto sized = [](const std::vector<float>& v, int64_t n, const char* name) {
    if (v.empty()) return;
    if (int64_t(v.size()) != n)
      throw_option(std::string(name) + " must have " + std::to_string(n) + " elements, got " +
                   std::to_string(v.size()));
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i])) throw_option(std::string(name) + "[" + std::to_string(i) + "] is not finite");
  };
  sized(c.router_bias, c.experts, "routerBias");
  sized(c.gate_bias, int64_t(c.experts) * c.intermediate, "gateBias");
  sized(c.up_bias, int64_t(c.experts) * c.intermediate, "upBias");
  sized(c.down_bias, int64_t(c.experts) * c.hidden, "downBias");
  if (c.gate_bias.empty() != c.up_bias.empty() || c.gate_bias.empty() != c.down_bias.empty())
    throw_option("expert biases: gateBias, upBias and downBias go together");
  if (!(c.swiglu_limit >= 0) || !std::isfinite(c.swiglu_limit))
    throw_option("clampedSwiglu.limit must be a finite number >= 0 (0 = plain SwiGLU)");
  if (!(c.swiglu_alpha > 0) || !std::isfinite(c.swiglu_alpha))
    throw_option("clampedSwiglu.alpha must be a finite number > 0");
  if (c.scoring == Scoring::SparseMixer) {
    if (c.top_k != 2)
      throw_option("scoring 'sparsemixer' selects exactly 2 experts (topK 2), got topK " + std::to_string(c.top_k));
    if (c.group_count != 0 || !c.selection_bias.empty())
      throw_option("scoring 'sparsemixer' takes no groups or selectionBias");
    if (!(c.jitter_eps >= 0) || !std::isfinite(c.jitter_eps)) throw_option("jitterEps must be a finite number >= 0");
  }
  if (c.score_on_input && !c.down_bias.empty())
    throw_option("scoreOnInput with expert biases: no supported family has both (the down bias would be unscaled)");
  if (c.shared_intermediate < 0) throw_option("sharedExperts.intermediate must be a positive integer");
  if (!(c.capacity_factor >= 0) || !std::isfinite(c.capacity_factor))
    throw_option("capacityFactor must be a finite number >= 0");
  if (c.threads < 0 || c.threads > 1024) throw_option("threads must be an integer in [1, 1024]");
}

int64_t expert_capacity(const LayerConfig& c, int64_t tokens) {
  if (c.capacity_factor <= 0) return std::numeric_limits<int32_t>::max();
  double cap = std::ceil(c.capacity_factor * double(tokens) * c.top_k / c.experts - 1e-9);
  return cap < 1 ? 1 : (int64_t)cap;
}

}  // namespace moecap
