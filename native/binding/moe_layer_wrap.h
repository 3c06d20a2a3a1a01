// JS class NativeMoeLayer: holds a shared_ptr to the core layer, whichever backend computes it
// (moecap::LayerBackend: the CPU MoeLayer or the CudaLayer). Each async call keeps its own
// reference, so close() while passes are in flight is safe: they finish, then memory is freed.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "layer/layer_backend.h"
#include "layer/moe_layer.h"

namespace moecap_binding {

class MoeLayerWrap : public Napi::ObjectWrap<MoeLayerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit MoeLayerWrap(const Napi::CallbackInfo& info);
  // `backend` and `reason`: what info() reports of the backend choice.
  void attach(std::shared_ptr<moecap::LayerBackend> layer, std::string backend, std::string reason) {
    layer_ = std::move(layer);
    backend_ = std::move(backend);
    backend_reason_ = std::move(reason);
  }

 private:
  std::shared_ptr<moecap::LayerBackend> live(Napi::Env env);
  Napi::Value Pass(const Napi::CallbackInfo& info, bool route_only);
  Napi::Value Forward(const Napi::CallbackInfo& info) { return Pass(info, false); }
  Napi::Value Route(const Napi::CallbackInfo& info) { return Pass(info, true); }
  Napi::Value Reference(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value OffloadInfo(const Napi::CallbackInfo& info);
  Napi::Value PinStatic(const Napi::CallbackInfo& info);
  Napi::Value ResetOffloadStats(const Napi::CallbackInfo& info);
  Napi::Value DropCache(const Napi::CallbackInfo& info);

  std::shared_ptr<moecap::LayerBackend> layer_;
  std::string backend_ = "cpu", backend_reason_;
};

// The `stats` object of a forward result (with `offload` when the layer offloads).
Napi::Object forward_stats_object(Napi::Env env, const moecap::ForwardStats& s, const moecap::LayerBackend& layer);

// Offload methods shared with the model: the layer's cache or an Error (ERR_INVALID_OPTION).
moecap::ExpertCache& offload_cache(Napi::Env env, moecap::LayerBackend& layer);

// createLayer(options) → Promise<NativeMoeLayer>; packing runs off the main thread.
Napi::Value CreateLayer(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
