// One MoE layer: route → plan → grouped SwiGLU experts → weighted combine (+ shared expert).
// Weights are packed once at construction; forward() is safe to call from several threads at
// once (passes are serialised on the layer's thread pool, each uses the layer's workspace).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dispatch/routing_plan.h"
#include "experts/expert_weights.h"
#include "kernels/kernel_table.h"
#include "layer_config.h"
#include "runtime/thread_pool.h"
#include "weights/packed_matrix.h"
#include "weights/weight_source.h"

namespace moecap {

struct ForwardStats {
  int tokens = 0;
  int distinct_experts = 0;          // experts with ≥1 kept assignment (A in MoE-CAP)
  int64_t assignments = 0;           // kept (token, expert) pairs
  int64_t dropped = 0;               // assignments dropped by the capacity limit
  int64_t capacity = -1;             // per-expert capacity, -1 when unlimited
  double expert_bytes = 0;           // packed bytes of the distinct routed experts read
  double shared_bytes = 0;           // packed bytes of the shared expert (0 if none)
  double router_bytes = 0;           // fp32 router bytes
  double flops = 0;                  // 2·H·E·T + 2·3·H·F·assignments + 2·3·H·Fs·T
  int64_t total_ns = 0, route_ns = 0, experts_ns = 0, combine_ns = 0;
  std::vector<int32_t> expert_counts;  // [E] kept rows per expert
};

struct ForwardResult {
  std::vector<float> output;    // [T, H]  (empty for route-only)
  std::vector<int32_t> ids;     // [T, k]
  std::vector<float> weights;   // [T, k]
  ForwardStats stats;
};

struct ReferenceResult {
  std::vector<double> output;   // [n_sample, H]
  std::vector<int32_t> ids;     // [T, k] fp64 routing of every token
  std::vector<double> weights;  // [T, k]
  int64_t dropped = 0;
};

// Packed bytes the layer will allocate (for the memory check before building it).
double layer_packed_bytes(const LayerConfig& c);

class MoeLayer {
 public:
  // `isa`: "auto" (or empty), "avx512", "avx2", "generic": never above what the CPU has.
  MoeLayer(const LayerConfig& config, std::shared_ptr<const WeightSource> weights, const std::string& isa);

  const LayerConfig& config() const { return cfg_; }
  const char* isa() const { return kernels_->isa; }
  const std::string& isa_note() const { return isa_note_; }
  int threads() const { return pool_.size(); }
  double expert_bytes() const { return double(experts_[0].bytes()); }
  double packed_bytes() const;

  void forward(const float* x, int tokens, ForwardResult& out);
  void route(const float* x, int tokens, ForwardResult& out);
  // fp64 reference from the master weights: routing for all tokens (capacity included), the
  // layer output for the tokens listed in `sample`.
  void reference(const float* x, int tokens, const std::vector<int32_t>& sample, ReferenceResult& out);

 private:
  struct Workspace {
    std::vector<uint8_t> act;               // per-token activation rows (non-f32 dtypes)
    std::vector<float> logits;              // [T, E padded to 32]
    std::vector<float> route_scratch;       // per thread
    AlignedBuffer h, h_act, out;            // per slot rows
    std::vector<const void*> in_ptrs;
    std::vector<float*> h_ptrs, out_ptrs;
    std::vector<void*> hact_ptrs;
    std::vector<float> scales, shared_gate;
    RoutingPlan plan;
  };

  void route_locked(const float* x, int T, ForwardResult& out);
  const void* act_row(const float* x, int t) const;

  LayerConfig cfg_;
  std::shared_ptr<const WeightSource> source_;
  const KernelTable* kernels_;
  std::string isa_note_;
  ThreadPool pool_;
  PackedMatrix router_;                 // f32 always (router math is fp32)
  std::vector<ExpertWeights> experts_;  // [E]
  std::unique_ptr<ExpertWeights> shared_;
  std::vector<float> shared_gate_weight_;  // [H] when gated
  Workspace ws_;
};

}  // namespace moecap
