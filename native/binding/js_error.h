// The one mapping from core errors to JS errors: the kind picks the class (Type → TypeError,
// Range → RangeError, Runtime → Error) and the code sets the error's `code` property. Both the
// async workers (promise_worker.h) and the synchronous methods go through it.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "error.h"

namespace moecap_binding {

// What a JS error is built from, taken on any thread (no JS values in it).
struct ErrorInfo {
  moecap::ErrorKind kind = moecap::ErrorKind::Runtime;
  moecap::ErrorCode code = moecap::ErrorCode::Internal;
  std::string message;
};

// The exception `e`: a moecap::Error keeps its kind and code; std::bad_alloc is a RangeError
// ERR_OUT_OF_MEMORY "out of memory"; any other exception an Error ERR_INTERNAL with its message.
ErrorInfo error_info(std::exception_ptr e);

Napi::Error js_error(Napi::Env env, const ErrorInfo& info);
Napi::Error js_error(Napi::Env env, moecap::ErrorKind kind, moecap::ErrorCode code, const std::string& message);

// Binding-side refusals, with their code.
[[noreturn]] void throw_js_type(Napi::Env env, moecap::ErrorCode code, const std::string& message);
[[noreturn]] void throw_js_range(Napi::Env env, moecap::ErrorCode code, const std::string& message);
[[noreturn]] void throw_js_error(Napi::Env env, moecap::ErrorCode code, const std::string& message);

// Runs `fn` (a core call on the main thread); any exception it throws becomes the JS error.
template <class F>
auto call_core(Napi::Env env, F&& fn) -> decltype(fn()) {
  std::exception_ptr err;
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    err = std::current_exception();
  }
  throw js_error(env, error_info(err));
}

}  // namespace moecap_binding
