// The baton pattern (after sharp): JS arguments are copied into a plain struct on the main
// thread, Execute() touches only that struct, and OnOK()/OnError() build JS values. Core errors
// keep their class: moecap::ErrorKind::Type → TypeError, Range → RangeError, else Error.
#pragma once
#include <napi.h>

#include <functional>
#include <string>

#include "error.h"

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
    } catch (const moecap::Error& e) {
      kind_ = e.kind();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      kind_ = moecap::ErrorKind::Range;
      SetError("out of memory");
    } catch (const std::exception& e) {
      kind_ = moecap::ErrorKind::Runtime;
      SetError(e.what());
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
  void OnError(const Napi::Error& e) final {
    Napi::Env env = Env();
    std::string msg = e.Message();
    Napi::Error err = kind_ == moecap::ErrorKind::Type    ? Napi::TypeError::New(env, msg)
                      : kind_ == moecap::ErrorKind::Range ? Napi::RangeError::New(env, msg)
                                                          : Napi::Error::New(env, msg);
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  moecap::ErrorKind kind_ = moecap::ErrorKind::Runtime;
};

}  // namespace moecap_binding
