// A MoE layer on the CUDA backend: the same config, master weights and ForwardResult as
// moecap::MoeLayer, computed by libmoecap_cuda.so through the C ABI (the library was found and
// loaded by choose_backend). Passes are serialised (one stream per layer). The loader knows the
// library only through that ABI; the GPU weight layout it reports sizes from is core code
// (backend/gpu_weight_layout.h).
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda_loader.h"
#include "layer/layer_backend.h"
#include "layer/moe_layer.h"
#include "layer_config.h"
#include "offload/offload_config.h"
#include "weights/weight_source.h"

namespace moecap {

struct CudaLayerOptions {
  int max_tokens = 4096;  // largest T of one pass (sizes the device workspace)
  int device = 0;
  int cache_slots = 0;                    // > 0: experts offloaded to pinned host memory, this many on the device
  double cache_bytes = 0;                 // cache_slots == 0: slots = whole GPU-layout experts in this many bytes
  CachePolicy policy = CachePolicy::LRU;  // eviction among the device slots (the CPU cache's policies)
  std::vector<bool> held;                 // [E] or empty (all): an expert-parallel rank's routed experts
};

class CudaLayer : public LayerBackend {
 public:
  // Throws moecap::Error (Runtime) with the library's message when the layer cannot be built.
  CudaLayer(const CudaApi* api, const LayerConfig& config, std::shared_ptr<const WeightSource> weights,
            const CudaLayerOptions& o);
  ~CudaLayer() override;
  CudaLayer(const CudaLayer&) = delete;
  CudaLayer& operator=(const CudaLayer&) = delete;

  const LayerConfig& config() const override { return cfg_; }
  const CudaLayerOptions& options() const { return opt_; }
  LayerInfo info() const override;
  double device_bytes() const;
  double expert_bytes() const;                                  // one routed expert in the GPU layout
  void check_pass(int tokens, bool route_only) const override;  // T <= maxTokens
  // With offload, out.stats.offloaded and out.stats.offload (counters since the previous forward).
  void forward(const float* x, int tokens, ForwardResult& out) override;
  // No router-only entry on the GPU: a whole pass, of which the caller reads ids and weights.
  void route(const float* x, int tokens, ForwardResult& out) override { forward(x, tokens, out); }
  // On the CPU, from the same master weights: the fp64 reference reads only those, so a CPU layer
  // with the smallest packing (int4), built on first use, serves it.
  void reference(const float* x, int tokens, const std::vector<int32_t>& sample, ReferenceResult& out) override;
  // Static policy: pins the most used experts so far → the experts pinned, ascending.
  std::vector<int> pin_static() override;

  // Expert parallelism, one pass in three calls (cuda_abi.h: moecap_cuda_layer_ep_*); global_T is
  // the pass's tokens over all ranks (it picks the kernels as a single-process pass of that many).
  bool holds(int expert) const { return opt_.held.empty() || opt_.held[size_t(expert)]; }
  size_t ep_row_bytes() const;  // one activation row as the GPU kernels read it
  // This rank's x [T,H] (T may be 0): out.ids and out.weights [T,k]; x_act [T][ep_row_bytes()].
  void ep_route(const float* x, int T, int global_T, ForwardResult& out, std::vector<uint8_t>& x_act);
  // Rows of held experts, expert-major: counts [E], rows [n][ep_row_bytes()], scales [n] → out [n][H].
  void ep_compute(int global_T, const int32_t* counts, const uint8_t* rows, const float* scales, float* out);
  // results [T·k][H] of the last ep_route's assignments → out.output [T,H].
  void ep_combine(int global_T, const float* results, ForwardResult& out);

 private:
  const CudaApi* api_;
  LayerConfig cfg_;
  std::shared_ptr<const WeightSource> weights_;
  CudaLayerOptions opt_;
  moecap_cuda_layer* layer_ = nullptr;
  std::mutex mutex_;
  std::mutex reference_mutex_;
  std::unique_ptr<MoeLayer> reference_layer_;
};

}  // namespace moecap
