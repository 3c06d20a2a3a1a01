// JS class NativeMoeLayer: holds a shared_ptr to the core layer (CPU, or CUDA when the backend
// choice picked it). Each async call keeps its own
// reference, so close() while passes are in flight is safe: they finish, then memory is freed.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>

#include "backend/cuda_layer.h"
#include "layer/moe_layer.h"

namespace moecap_binding {

class MoeLayerWrap : public Napi::ObjectWrap<MoeLayerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit MoeLayerWrap(const Napi::CallbackInfo& info);
  void attach(std::shared_ptr<moecap::MoeLayer> layer) { layer_ = std::move(layer); }
  // The CUDA layer, and what reference() needs to build a CPU layer from the same master weights.
  struct CpuReference {
    std::mutex mutex;
    moecap::LayerConfig config;
    std::shared_ptr<moecap::WeightSource> weights;
    std::unique_ptr<moecap::MoeLayer> layer;  // built on first use (fp64 reference reads master weights)
  };
  void attach_cuda(std::shared_ptr<moecap::CudaLayer> layer, std::shared_ptr<CpuReference> ref) {
    cuda_ = std::move(layer);
    cuda_ref_ = std::move(ref);
  }
  void set_backend(std::string backend, std::string reason) {
    backend_ = std::move(backend);
    backend_reason_ = std::move(reason);
  }

 private:
  std::shared_ptr<moecap::MoeLayer> live(Napi::Env env);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Route(const Napi::CallbackInfo& info);
  Napi::Value Reference(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value OffloadInfo(const Napi::CallbackInfo& info);
  Napi::Value PinStatic(const Napi::CallbackInfo& info);
  Napi::Value ResetOffloadStats(const Napi::CallbackInfo& info);
  Napi::Value DropCache(const Napi::CallbackInfo& info);

  std::shared_ptr<moecap::MoeLayer> layer_;
  std::shared_ptr<moecap::CudaLayer> cuda_;  // set instead of layer_ on the CUDA backend
  std::shared_ptr<CpuReference> cuda_ref_;
  std::string backend_ = "cpu", backend_reason_;
};

// The `stats` object of a forward result (with `offload` when the layer offloads).
Napi::Object forward_stats_object(Napi::Env env, const moecap::ForwardStats& s, const moecap::MoeLayer& layer);

// Offload methods shared with the model: the layer's cache or a TypeError/Error.
moecap::ExpertCache& offload_cache(Napi::Env env, moecap::MoeLayer& layer);

// createLayer(options) → Promise<NativeMoeLayer>; packing runs off the main thread.
Napi::Value CreateLayer(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
