#include "model/moe_model.h"

#include <algorithm>

#include "error.h"
#include "runtime/clock.h"
#include "runtime/thread_pool.h"

namespace moecap {

MoeModel::MoeModel(const LayerConfig& config, const std::vector<std::shared_ptr<const WeightSource>>& weights,
                   const std::string& isa, const OffloadConfig& offload)
    : offload_(offload) {
  if (weights.empty()) throw_option("layers must be >= 1");
  if (offload_.enabled && offload_.prefetch) io_ = std::make_shared<Prefetcher>();
  // One set of worker threads for all layers (they run one after the other).
  auto pool = make_thread_pool(config);
  for (size_t l = 0; l < weights.size(); ++l) {
    OffloadConfig off = offload_;
    if (!off.path.empty()) off.path += "." + std::to_string(l);
    layers_.emplace_back(new MoeLayer(config, weights[l], isa, off, io_, pool));
  }
}

MoeModel::MoeModel(const std::vector<LayerConfig>& configs,
                   const std::vector<std::shared_ptr<const WeightSource>>& weights, const std::string& isa,
                   const std::vector<OffloadConfig>& offloads) {
  if (weights.empty()) throw_option("layers must be >= 1");
  if (configs.size() != weights.size() || offloads.size() != weights.size())
    throw_runtime("model: one config, weight source and offload config per layer");
  offload_ = offloads[0];
  for (size_t l = 1; l < configs.size(); ++l) {
    if (configs[l].hidden != configs[0].hidden)
      throw_option("layer " + std::to_string(l) + " has hidden size " + std::to_string(configs[l].hidden) +
                   ", layer 0 has " + std::to_string(configs[0].hidden) + " (the residual stream needs one size)");
    if (offloads[l].enabled != offload_.enabled || offloads[l].prefetch != offload_.prefetch)
      throw_option("every layer of a model offloads alike (layer " + std::to_string(l) + " differs from layer 0)");
  }
  if (offload_.enabled && offload_.prefetch) io_ = std::make_shared<Prefetcher>();
  auto pool = make_thread_pool(configs[0]);
  for (size_t l = 0; l < weights.size(); ++l)
    layers_.emplace_back(new MoeLayer(configs[l], weights[l], isa, offloads[l], io_, pool));
}

void MoeModel::forward(const float* x, int T, ModelResult& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t t0 = now_ns();
  const int H = layers_[0]->config().hidden, N = layers();
  std::vector<float> h(x, x + size_t(T) * H);
  out.layers.assign(size_t(N), ForwardStats());
  out.offload = OffloadStats();
  out.compute_ns = 0;
  out.predicted_correct = out.predicted_total = 0;
  const bool predict = offload_.enabled && offload_.prefetch;
  std::vector<int> predicted, next;  // predicted experts of layer l, of layer l+1
  bool have_prediction = false;
  ForwardResult r;
  const OffloadStats before = offload_.enabled ? offload_stats() : OffloadStats();
  const int64_t io_before = io_ ? io_->busy_ns() : 0;
  for (int l = 0; l < N; ++l) {
    next.clear();
    int64_t predict_ns = 0;
    std::function<void()> hook = [&] {
      const int64_t p0 = now_ns();
      layers_[size_t(l + 1)]->predict_and_prefetch(h.data(), T, next);
      predict_ns = now_ns() - p0;
    };
    layers_[size_t(l)]->forward(h.data(), T, r, predict && l + 1 < N ? &hook : nullptr);
    if (have_prediction) {
      for (int e = 0; e < (int)r.stats.expert_counts.size(); ++e) {
        if (r.stats.expert_counts[size_t(e)] == 0) continue;
        ++out.predicted_total;
        if (std::find(predicted.begin(), predicted.end(), e) != predicted.end()) ++out.predicted_correct;
      }
    }
    for (size_t i = 0; i < h.size(); ++i) h[i] += r.output[i];
    out.compute_ns += r.stats.compute_ns + predict_ns;
    out.layers[size_t(l)] = std::move(r.stats);
    predicted.swap(next);
    have_prediction = predict && l + 1 < N;
  }
  if (offload_.enabled) out.offload = offload_stats() - before;
  // The layers share the I/O threads, and layer l+1's prefetch reads overlap layer l's: the
  // pass's I/O time is the shared threads' busy time, not the sum of the layers'.
  if (io_) out.offload.io_ns = io_->busy_ns() - io_before;
  out.output.swap(h);
  correct_ += out.predicted_correct;
  total_ += out.predicted_total;
  out.total_ns = now_ns() - t0;
}

OffloadStats MoeModel::offload_stats() const {
  OffloadStats s;
  for (auto& l : layers_)
    if (l->cache()) s += l->cache()->stats();
  return s;
}

void MoeModel::reset_offload_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& l : layers_)
    if (l->cache()) l->cache()->reset_stats();
  correct_ = total_ = 0;
}

}  // namespace moecap
