// One MoE layer: route → plan → grouped SwiGLU experts → weighted combine (+ shared expert).
// Weights are packed once at construction; forward() is safe to call from several threads at
// once (passes are serialised on the layer's thread pool, each uses the layer's workspace).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dispatch/routing_plan.h"
#include "experts/expert_ffn.h"
#include "experts/expert_arena.h"
#include "experts/expert_weights.h"
#include "kernels/kernel_table.h"
#include "layer/forward_result.h"
#include "layer/layer_backend.h"
#include "layer_config.h"
#include "offload/expert_cache.h"
#include "offload/offload_config.h"
#include "runtime/thread_pool.h"
#include "weights/packed_matrix.h"
#include "weights/weight_source.h"

namespace moecap {

class ExpertTransport;
struct ExpertPlacement;
struct EpPassStats;

// Packed bytes the layer will allocate (for the memory check before building it).
double layer_packed_bytes(const LayerConfig& c);
// The same with offload on: only `resident_experts` routed experts are allocated.
double layer_packed_bytes(const LayerConfig& c, int resident_experts);
// The compute threads a config asks for (`threads`, 0 = all hardware threads; `pin_threads`).
// A layer makes its own; a model makes one and shares it across its layers.
std::shared_ptr<ThreadPool> make_thread_pool(const LayerConfig& c);

// The CPU backend.
class MoeLayer : public LayerBackend {
 public:
  // `isa`: "auto" (or empty) or a kernel set this CPU runs (kernel_table.h: kIsaNames); others throw.
  // With offload.enabled the routed experts live in a weights file (written here unless
  // offload.path names a valid one) and only a bounded cache of them stays resident; `io` is the
  // I/O thread to share (a model's layers share one), or null for the layer's own. `pool`: the
  // worker threads to share (a model's layers share one, so no layer's idle workers spin while
  // another computes), or null for the layer's own of config.threads.
  // `held` (expert parallelism): which routed experts this layer packs ([E], empty = all); the
  // others are never computed here. With offload, the weights file holds only those.
  MoeLayer(const LayerConfig& config, std::shared_ptr<const WeightSource> weights, const std::string& isa,
           const OffloadConfig& offload = OffloadConfig(), std::shared_ptr<Prefetcher> io = nullptr,
           std::shared_ptr<ThreadPool> pool = nullptr, const std::vector<bool>& held = {});

  const LayerConfig& config() const override { return cfg_; }
  LayerInfo info() const override;
  const char* isa() const { return kernels_->isa; }
  const std::string& isa_note() const { return isa_note_; }
  int threads() const { return pool_->size(); }
  bool pinned_threads() const { return pool_->pinned(); }
  double expert_bytes() const { return double(expert_packed_bytes(cfg_.dtype, cfg_.hidden, cfg_.intermediate)); }
  double packed_bytes() const;
  // Workspace bytes a forward pass of T tokens allocates (with a margin), for the memory check.
  double pass_workspace_bytes(int tokens) const;
  void check_pass(int tokens, bool route_only) const override;

  void forward(const float* x, int tokens, ForwardResult& out) override { forward(x, tokens, out, nullptr); }
  // `before_experts` (may be null) runs once the pass's loads are issued and before any expert is
  // computed: a model uses it to prefetch the next layer's experts behind this layer's misses.
  void forward(const float* x, int tokens, ForwardResult& out, const std::function<void()>* before_experts);
  // Next-layer prediction: routes x through this layer's router and prefetches the distinct
  // experts (most used first) into the cache. `experts` receives them. No-op prefetch when not offloaded.
  void predict_and_prefetch(const float* x, int tokens, std::vector<int>& experts);
  ExpertCache* cache() override { return cache_.get(); }
  const ExpertCache* cache() const { return cache_.get(); }
  std::vector<int> pin_static() override;
  void route(const float* x, int tokens, ForwardResult& out) override;
  // Expert parallelism (ep/ep_forward.cc): this rank's tokens are routed here, each kept row is
  // computed on a rank holding its expert (rows and results cross `transport`), and the weighted
  // combine runs here in forward()'s order, so the output equals forward()'s bitwise.
  void forward_ep(const float* x, int tokens, ForwardResult& out, ExpertTransport& transport,
                  const ExpertPlacement& placement, EpPassStats& stats);
  // Partial expert compute: the scaled FFN outputs of given rows of given (held) experts, computed
  // exactly as forward() computes them. `out` rows hold the hidden size padded to 32 floats.
  struct PartialRows {
    int expert = 0;
    int n = 0;
    const void* const* in = nullptr;  // [n] activation rows in the dtype's format
    const float* scale = nullptr;     // [n] router weights
    float* const* out = nullptr;      // [n] output rows
  };
  // Offloaded, the experts come through the cache and `offload` (may be null) gets its counters of
  // this call.
  void compute_partial(const std::vector<PartialRows>& groups, OffloadStats* offload = nullptr);
  bool holds(int expert) const { return expert >= 0 && size_t(expert) < held_.size() && held_[size_t(expert)]; }
  // Offloaded: the routed experts resident now (ascending); empty when not offloaded.
  std::vector<int> resident() const;
  // fp64 reference from the master weights (layer/moe_layer_reference.cc).
  void reference(const float* x, int tokens, const std::vector<int32_t>& sample, ReferenceResult& out) override;

 private:
  struct Workspace {
    std::vector<uint8_t> act;          // per-token activation rows (non-f32 dtypes)
    std::vector<float> logits;         // [T, E padded to 32]
    std::vector<float> route_scratch;  // per thread
    // Per chunk whose router panels are split over threads (decode: chunks < threads): parts left.
    std::unique_ptr<std::atomic<int>[]> route_pending;  // pool size, allocated on first split
    AlignedBuffer h, h_act, out;                        // per slot rows
    std::vector<const void*> in_ptrs;
    std::vector<float*> h_ptrs, out_ptrs;
    std::vector<void*> hact_ptrs;
    std::vector<float> scales, shared_gate;
    RoutingPlan plan;
    // Expert parallelism: rows sent, received, computed and returned.
    AlignedBuffer ep_send, ep_recv, ep_out, ep_ret, ep_h, ep_hact;
  };

  // The steps of forward(), in order (the pass lock held).
  void prepare_activations(const float* x, int T);
  void route_locked(const float* x, int T, ForwardResult& out);
  // The routing plan of the routed ids and its stats: `capacity` per expert ([E]), `reported` the
  // layer's capacity C (stats.capacity).
  void plan_routes(int T, ForwardResult& out, const std::vector<int64_t>& capacity, int64_t reported);
  void plan_expert_rows(const float* x, int T, const ForwardResult& out);
  int64_t run_experts(ForwardResult& out, const std::function<void()>* before_experts);
  void combine(int T, ForwardResult& out);
  const void* act_row(const float* x, int t) const;
  // The family variant of routed expert `expert`'s rows (biases, clamped SwiGLU, input scaling).
  void set_variant(ExpertRows& g, int expert) const;
  void setup_offload(const OffloadConfig& off, std::shared_ptr<Prefetcher> io);
  // The cache numbers the experts of its file (the held ones, in order): expert ids ↔ entries.
  std::vector<int> to_experts(const std::vector<int>& entries) const;
  std::vector<int> to_entries(const std::vector<int>& experts) const;  // held experts only

  LayerConfig cfg_;
  std::shared_ptr<const WeightSource> source_;
  const KernelTable* kernels_;
  std::string isa_note_;
  std::shared_ptr<ThreadPool> pool_;
  PackedMatrix router_;                 // f32 always (router math is fp32)
  ExpertArena arena_;                   // the resident experts' bytes (one huge-page buffer)
  std::vector<ExpertWeights> experts_;  // [E] all resident (views of arena_), or empty when offloaded
  std::unique_ptr<ExpertCache> cache_;  // offloaded experts
  std::vector<bool> held_;              // [E] the routed experts this layer computes
  std::vector<int> file_entry_;         // offloaded: [E] expert → its entry in the file (-1: not held)
  std::vector<int> file_expert_;        // offloaded: entry → expert
  std::unique_ptr<ExpertWeights> shared_;
  std::vector<float> shared_gate_weight_;  // [H] when gated
  // Expert biases in panel order (kernels/linear_job.h): per expert b13_stride_ / b2_stride_ floats.
  std::vector<float> b13_, b2_;
  size_t b13_stride_ = 0, b2_stride_ = 0;
  Workspace ws_;
};

}  // namespace moecap
