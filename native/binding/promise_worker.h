// The baton pattern (after sharp): JS arguments are copied into a plain struct on the main
// thread, Execute() touches only that struct, and OnOK()/OnError() build JS values. Core errors
// become JS errors through js_error.h (class from the kind, `code` from the code).
#pragma once
#include <napi.h>

#include <string>
#include <utility>

#include "js_error.h"

namespace moecap_binding {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env, "moecap"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;                      // worker thread
  virtual Napi::Value Result(Napi::Env env) = 0;  // main thread

  void Execute() final {
    try {
      Run();
    } catch (...) {
      error_ = error_info(std::current_exception());
      SetError(error_.message);
    }
  }
  void OnOK() final {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error&) final { deferred_.Reject(js_error(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  ErrorInfo error_;
};

// Starts a worker of type W (built from env and args) and returns its promise; the worker
// deletes itself once it has settled it.
template <class W, class... Args>
Napi::Promise queue_worker(Napi::Env env, Args&&... args) {
  auto* w = new W(env, std::forward<Args>(args)...);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace moecap_binding
