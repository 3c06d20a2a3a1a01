// The baton pattern (after sharp): JS arguments are copied into a plain struct on the main
// thread, Execute() touches only that struct, and the result is turned into JS values on the main
// thread. Core errors become JS errors through js_error.h (class from the kind, `code` from the code).
//
// Settling never throws. node-addon-api's default completion turns a failed resolve into a JS
// throw; when the worker_thread that queued the work is being terminated, JS can no longer run and
// that throw aborts the whole process. So the promise is settled only while the environment can
// still run JS; otherwise the finished result is dropped. The worker owns (shared_ptr) every core
// object its work touches, so a close() or the environment's teardown during the work only drops
// the wrapper's reference, and the object is destroyed on the JS thread after the work is done.
#pragma once
#include <napi.h>

#include <string>
#include <utility>

#include "js_error.h"

namespace moecap_binding {

// False once the environment stops running JS (a worker_thread being terminated): calls that run
// JS then fail with napi_pending_exception / napi_cannot_run_js instead of running.
inline bool can_run_js(napi_env env) {
  napi_value o = nullptr, v = nullptr;
  if (napi_create_object(env, &o) != napi_ok || napi_get_undefined(env, &v) != napi_ok) return false;
  return napi_set_named_property(env, o, "probe", v) == napi_ok;
}

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env, "moecap") {
    if (napi_create_promise(env, &deferred_, &promise_) != napi_ok)
      throw_js_error(env, moecap::ErrorCode::Internal, "cannot create a promise");
  }
  Napi::Promise Promise() { return Napi::Promise(Env(), promise_); }

 protected:
  virtual void Run() = 0;                         // worker thread
  virtual Napi::Value Result(Napi::Env env) = 0;  // main thread

  void Execute() final {
    try {
      Run();
    } catch (...) {
      error_ = error_info(std::current_exception());
      failed_ = true;
    }
  }

  void OnWorkComplete(Napi::Env env, napi_status status) final {
    if (status != napi_cancelled && can_run_js(env)) {
      Napi::HandleScope scope(env);
      Settle(env);
    }
    Destroy();
  }

 private:
  void Settle(Napi::Env env) noexcept {
    napi_value value = nullptr;
    bool ok = !failed_;
    try {
      value = ok ? Napi::Value(Result(env)) : Napi::Value(js_error(env, error_).Value());
    } catch (const Napi::Error& e) {
      ok = false;
      value = e.Value();
    } catch (...) {
      ok = false;
      const ErrorInfo info = error_info(std::current_exception());
      try {
        value = js_error(env, info).Value();
      } catch (...) {
        value = nullptr;
      }
    }
    if (value == nullptr) return;  // the environment stopped running JS meanwhile
    // A failure here also means JS stopped meanwhile: nobody is left to tell.
    if (ok) napi_resolve_deferred(env, deferred_, value);
    else napi_reject_deferred(env, deferred_, value);
  }

  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  ErrorInfo error_;
  bool failed_ = false;
};

// Starts a worker of type W (built from env and args) and returns its promise; the worker
// deletes itself once its work has completed (and it has settled the promise, while JS can run).
template <class W, class... Args>
Napi::Promise queue_worker(Napi::Env env, Args&&... args) {
  auto* w = new W(env, std::forward<Args>(args)...);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace moecap_binding
