#include "backend_info.h"

#include "backend/cuda_loader.h"
#include "js_error.h"

namespace moecap_binding {

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string requested = "auto";
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString())
      throw_js_type(env, moecap::ErrorCode::InvalidArgument, "backend must be a string: 'cpu', 'cuda' or 'auto'");
    requested = info[0].As<Napi::String>().Utf8Value();
  }
  const moecap::BackendChoice c = call_core(env, [&] { return moecap::choose_backend(requested); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("backend", c.backend);
  o.Set("requested", c.requested);
  o.Set("reason", c.reason);
  o.Set("library", c.library.empty() ? env.Null() : Napi::String::New(env, c.library));
  o.Set("driverVersion", c.driver_version);
  o.Set("runtimeVersion", c.runtime_version);
  return o;
}

}  // namespace moecap_binding
