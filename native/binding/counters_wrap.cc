#include "counters_wrap.h"

#include "js_error.h"

namespace moecap_binding {

static Napi::Array to_js(Napi::Env env, const moecap::CounterList& list, bool values) {
  Napi::Array a = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& c = list[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", c.name);
    o.Set("available", c.available);
    if (!c.unit.empty()) o.Set("unit", c.unit);
    if (c.available) {
      if (values) o.Set("value", c.value);
      o.Set("source", c.source);
    } else {
      o.Set("reason", c.reason);
    }
    a.Set(uint32_t(i), o);
  }
  return a;
}

Napi::Function CountersWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeCounters",
                     {InstanceMethod<&CountersWrap::Start>("start"), InstanceMethod<&CountersWrap::Stop>("stop"),
                      InstanceMethod<&CountersWrap::Probe>("probe")});
}

CountersWrap::CountersWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CountersWrap>(info), session_(new moecap::CounterSession()) {}

Napi::Value CountersWrap::Start(const Napi::CallbackInfo& info) {
  session_->start();
  running_ = true;
  return info.Env().Undefined();
}

Napi::Value CountersWrap::Stop(const Napi::CallbackInfo& info) {
  if (!running_)
    throw_js_error(info.Env(), moecap::ErrorCode::InvalidArgument, "counters.stop() called without start()");
  running_ = false;
  return to_js(info.Env(), session_->stop(), true);
}

Napi::Value CountersWrap::Probe(const Napi::CallbackInfo& info) { return to_js(info.Env(), session_->probe(), false); }

}  // namespace moecap_binding
