// Per-addon-instance state (worker threads each load their own instance): no globals.
#pragma once
#include <napi.h>

namespace moecap_binding {

struct AddonState {
  Napi::FunctionReference layer_ctor;
  Napi::FunctionReference model_ctor;
  static AddonState& get(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }
};

}  // namespace moecap_binding
