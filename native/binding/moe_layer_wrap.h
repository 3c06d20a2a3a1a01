// JS class NativeMoeLayer: holds a shared_ptr to the core layer. Each async call keeps its own
// reference, so close() while passes are in flight is safe: they finish, then memory is freed.
#pragma once
#include <napi.h>

#include <memory>

#include "layer/moe_layer.h"

namespace moecap_binding {

class MoeLayerWrap : public Napi::ObjectWrap<MoeLayerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit MoeLayerWrap(const Napi::CallbackInfo& info);
  void attach(std::shared_ptr<moecap::MoeLayer> layer) { layer_ = std::move(layer); }

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
};

// The `stats` object of a forward result (with `offload` when the layer offloads).
Napi::Object forward_stats_object(Napi::Env env, const moecap::ForwardStats& s, const moecap::MoeLayer& layer);

// Offload methods shared with the model: the layer's cache or a TypeError/Error.
moecap::ExpertCache& offload_cache(Napi::Env env, moecap::MoeLayer& layer);

// createLayer(options) → Promise<NativeMoeLayer>; packing runs off the main thread.
Napi::Value CreateLayer(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
