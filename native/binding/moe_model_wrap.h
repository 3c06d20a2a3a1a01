// JS class NativeMoeModel: N MoE layers with residuals (see core/model/moe_model.h). Same baton /
// promise-worker pattern and close() semantics as NativeMoeLayer.
#pragma once
#include <napi.h>

#include <memory>

#include "model/moe_model.h"

namespace moecap_binding {

class MoeModelWrap : public Napi::ObjectWrap<MoeModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit MoeModelWrap(const Napi::CallbackInfo& info);
  void attach(std::shared_ptr<moecap::MoeModel> m) { model_ = std::move(m); }

 private:
  std::shared_ptr<moecap::MoeModel> live(Napi::Env env);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value OffloadStats(const Napi::CallbackInfo& info);
  Napi::Value PinStatic(const Napi::CallbackInfo& info);
  Napi::Value ResetOffloadStats(const Napi::CallbackInfo& info);
  Napi::Value DropCache(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);

  std::shared_ptr<moecap::MoeModel> model_;
};

// createModel({ layers, ...layer options, weights: { seed } }) → Promise<NativeMoeModel>.
// Layer l uses seed + l.
Napi::Value CreateModel(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
