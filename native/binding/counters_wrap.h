// JS class NativeCounters: a CounterSession opened for this process's current threads.
#pragma once
#include <napi.h>

#include <memory>

#include "counters/counter_session.h"

namespace moecap_binding {

class CountersWrap : public Napi::ObjectWrap<CountersWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CountersWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Probe(const Napi::CallbackInfo& info);
  std::unique_ptr<moecap::CounterSession> session_;
  bool running_ = false;
};

}  // namespace moecap_binding
