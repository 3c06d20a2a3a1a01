// A MoE layer on the CUDA backend: the same config, master weights and ForwardResult as
// moecap::MoeLayer, computed by libmoecap_cuda.so through the C ABI (the library was found and
// loaded by choose_backend). Passes are serialised (one stream per layer).
#pragma once
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda_loader.h"
#include "layer/moe_layer.h"
#include "layer_config.h"
#include "offload/offload_config.h"
#include "weights/weight_source.h"

namespace moecap {

struct CudaLayerOptions {
  int max_tokens = 4096;  // largest T of one pass (sizes the device workspace)
  int device = 0;
  int cache_slots = 0;    // > 0: experts offloaded to pinned host memory, this many on the device
  double cache_bytes = 0;  // cache_slots == 0: slots = whole GPU-layout experts in this many bytes
  CachePolicy policy = CachePolicy::LRU;  // eviction among the device slots (the CPU cache's policies)
};

class CudaLayer {
 public:
  // Throws moecap::Error (Runtime) with the library's message when the layer cannot be built.
  CudaLayer(const CudaApi* api, const LayerConfig& config, const WeightSource& weights, const CudaLayerOptions& o);
  ~CudaLayer();
  CudaLayer(const CudaLayer&) = delete;
  CudaLayer& operator=(const CudaLayer&) = delete;

  const LayerConfig& config() const { return cfg_; }
  const CudaLayerOptions& options() const { return opt_; }
  double device_bytes() const;
  double expert_bytes() const;  // one routed expert in the GPU layout
  // With offload, out.stats.offloaded and out.stats.offload (counters since the previous forward).
  void forward(const float* x, int tokens, ForwardResult& out);
  // Static policy: pins the most used experts so far → the experts pinned, ascending.
  std::vector<int> pin_static();

 private:
  const CudaApi* api_;
  LayerConfig cfg_;
  CudaLayerOptions opt_;
  moecap_cuda_layer* layer_ = nullptr;
  std::mutex mutex_;
};

}  // namespace moecap
