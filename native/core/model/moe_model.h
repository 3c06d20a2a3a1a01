// A stack of MoE layers with residuals, x ← x + moe_l(x), for offload studies across layers.
// With offload and prefetch on, while layer l computes, layer l+1's experts are predicted by
// routing layer l's input through layer l+1's router, and prefetched behind l's own misses (one
// I/O thread shared by all layers, FIFO). Prediction accuracy = |predicted ∩ used| / |used| over
// the distinct experts of each predicted layer pass.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "layer/moe_layer.h"

namespace moecap {

struct ModelResult {
  std::vector<float> output;         // [T, H]
  std::vector<ForwardStats> layers;  // per layer
  int64_t total_ns = 0, compute_ns = 0;
  OffloadStats offload;           // summed over layers, this pass
  int64_t predicted_correct = 0;  // |predicted ∩ used|, summed over layers 1..N-1
  int64_t predicted_total = 0;    // |used| of the predicted layers
};

class MoeModel {
 public:
  // weights[l] for layer l (each layer its own weights). offload.path, when set, is a prefix:
  // layer l's file is "<path>.<l>".
  MoeModel(const LayerConfig& config, const std::vector<std::shared_ptr<const WeightSource>>& weights,
           const std::string& isa, const OffloadConfig& offload);
  // Each layer its own shape, routing and offload file (a checkpoint's layers): every layer needs
  // the same hidden size (the residual stream) and the same offload on/off and prefetch.
  MoeModel(const std::vector<LayerConfig>& configs, const std::vector<std::shared_ptr<const WeightSource>>& weights,
           const std::string& isa, const std::vector<OffloadConfig>& offloads);

  int layers() const { return (int)layers_.size(); }
  MoeLayer& layer(int l) { return *layers_[size_t(l)]; }
  const MoeLayer& layer(int l) const { return *layers_[size_t(l)]; }
  bool offloaded() const { return offload_.enabled; }
  const OffloadConfig& offload() const { return offload_; }

  // Safe from several threads: passes are serialised.
  void forward(const float* x, int tokens, ModelResult& out);
  OffloadStats offload_stats() const;  // cumulative, summed over layers
  void reset_offload_stats();
  int64_t predicted_correct() const { return correct_; }
  int64_t predicted_total() const { return total_; }

 private:
  OffloadConfig offload_;
  std::shared_ptr<Prefetcher> io_;
  std::vector<std::unique_ptr<MoeLayer>> layers_;
  std::mutex mutex_;
  int64_t correct_ = 0, total_ = 0;
};

}  // namespace moecap
