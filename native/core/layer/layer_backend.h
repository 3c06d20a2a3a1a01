// What a caller needs of one MoE layer, whichever backend computes it: the CPU layer (MoeLayer)
// and the CUDA layer (CudaLayer) both implement it, so the binding holds one pointer.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "layer/forward_result.h"
#include "layer_config.h"

namespace moecap {

class ExpertCache;

// What info() reports of a layer besides its config.
struct LayerInfo {
  std::string isa;                     // kernel set, or "cuda"
  std::string isa_note;                // a note on the ISA choice ("" if none; a named ISA the CPU lacks is refused)
  int threads = 0;                     // compute threads (0 on the GPU)
  std::optional<bool> pinned_threads;  // CPU only: each compute thread on a CPU of its own
  std::optional<bool> huge_pages;      // CPU only: large weight buffers asked for transparent huge pages
  std::optional<int> max_tokens;       // CUDA only: largest T of one pass
  double packed_bytes = 0;             // the layer's weights as allocated (host or device)
  double expert_bytes = 0;             // one routed expert as stored
  bool splits_compute_time = false;    // forward stats separate compute from waits (compute_ns)
};

class LayerBackend {
 public:
  virtual ~LayerBackend() = default;

  virtual const LayerConfig& config() const = 0;
  virtual LayerInfo info() const = 0;
  // Refuses a pass of `tokens` before it is queued (RangeError): more workspace than the memory
  // available (CPU forward), more than maxTokens (CUDA).
  virtual void check_pass(int tokens, bool route_only) const = 0;
  virtual void forward(const float* x, int tokens, ForwardResult& out) = 0;
  // Router only: ids, weights and routing stats (a whole pass where the backend has no router-only entry).
  virtual void route(const float* x, int tokens, ForwardResult& out) = 0;
  // fp64 reference from the master weights: routing for all tokens (capacity included), the
  // layer output for the tokens listed in `sample`.
  virtual void reference(const float* x, int tokens, const std::vector<int32_t>& sample, ReferenceResult& out) = 0;
  // The offload cache whose file, counters and resident set the caller may read, or null (no
  // offload, or offload kept inside the backend: the CUDA layer reports it per pass only).
  virtual ExpertCache* cache() { return nullptr; }
  // Static policy: the passes so far were the profile run; pins the most used experts → the
  // experts pinned, ascending. Throws (ERR_INVALID_OPTION) when the layer does not offload.
  virtual std::vector<int> pin_static() = 0;
};

}  // namespace moecap
