// One rank of an expert-parallel layer: the layer holding this rank's experts, the placement every
// rank computes alike, and the transport. Passes are serialised (one exchange at a time).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/cuda_layer.h"
#include "ep/ep_pass_stats.h"
#include "ep/expert_placement.h"
#include "ep/expert_transport.h"
#include "layer/moe_layer.h"

namespace moecap {

// A rank's offload: its share of the experts in a weights file of its own. A given path gets a
// ".rank<r>-of-<P>" suffix (the ranks may share a folder); empty stays a scratch file.
OffloadConfig rank_offload(const OffloadConfig& offload, int rank, int ranks);

// The GPU of a rank on the CUDA backend: its index on its node (local_rank, from the launcher;
// -1 = unknown, then the world rank) modulo the node's devices, so the ranks of a node spread over
// its GPUs and share them round-robin when they outnumber them.
int rank_device(int local_rank, int rank, int device_count);

class EpLayer {
 public:
  // `offload` (enabled or not): this rank's held experts stream from its own weights file through
  // the layer's cache (rank_offload names the file).
  EpLayer(const LayerConfig& config, std::shared_ptr<const WeightSource> weights, const std::string& isa,
          ExpertPlacement placement, std::shared_ptr<ExpertTransport> transport,
          const OffloadConfig& offload = OffloadConfig());
  // On the CUDA backend: this rank's held experts on its GPU (`cuda.device`), rows staged through
  // host memory (ep_forward_cuda.h), exchanged over `transport` or, with `nccl`, over NCCL between
  // the GPUs (cuda_nccl_transport.h; its id travels over `transport`). No offload yet.
  EpLayer(const CudaApi* api, const LayerConfig& config, std::shared_ptr<const WeightSource> weights,
          CudaLayerOptions cuda, ExpertPlacement placement, std::shared_ptr<ExpertTransport> transport,
          bool nccl = false);
  void forward(const float* x, int tokens, ForwardResult& out, EpPassStats& stats);
  // Router only, on this rank alone (no exchange): e.g. per-expert loads for a placement.
  void route(const float* x, int tokens, ForwardResult& out);
  // Collective: every rank's bytes arrive at rank 0 (in rank order); other ranks get nothing.
  std::vector<std::vector<uint8_t>> gather_to_root(const void* data, int64_t bytes);
  const ExpertPlacement& placement() const { return placement_; }
  const LayerConfig& config() const { return cuda_ ? cuda_->config() : layer_->config(); }
  const CudaLayer* cuda() const { return cuda_.get(); }  // null on the CPU
  int rank() const { return transport_->rank(); }
  std::vector<int> held() const;

 private:
  std::mutex mu_;
  ExpertPlacement placement_;
  std::shared_ptr<ExpertTransport> transport_;  // host: gathers, and the pass unless exchange_ is set
  std::shared_ptr<ExpertTransport> exchange_;   // the pass's exchange (NCCL), or null
  std::unique_ptr<MoeLayer> layer_;             // the CPU layer, or
  std::unique_ptr<CudaLayer> cuda_;             // the CUDA one
};

}  // namespace moecap
