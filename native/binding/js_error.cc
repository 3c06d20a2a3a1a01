#include "js_error.h"

#include <new>

namespace moecap_binding {

ErrorInfo error_info(std::exception_ptr e) {
  ErrorInfo i;
  try {
    std::rethrow_exception(e);
  } catch (const moecap::Error& x) {
    i.kind = x.kind();
    i.code = x.code();
    i.message = x.what();
  } catch (const std::bad_alloc&) {
    i.kind = moecap::ErrorKind::Range;
    i.code = moecap::ErrorCode::OutOfMemory;
    i.message = "out of memory";
  } catch (const std::exception& x) {
    i.message = x.what();
  } catch (...) {
    i.message = "unknown error";
  }
  return i;
}

Napi::Error js_error(Napi::Env env, moecap::ErrorKind kind, moecap::ErrorCode code, const std::string& message) {
  Napi::Error err = kind == moecap::ErrorKind::Type    ? Napi::TypeError::New(env, message)
                    : kind == moecap::ErrorKind::Range ? Napi::RangeError::New(env, message)
                                                       : Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, moecap::error_code_name(code)));
  return err;
}

Napi::Error js_error(Napi::Env env, const ErrorInfo& i) { return js_error(env, i.kind, i.code, i.message); }

void throw_js_type(Napi::Env env, moecap::ErrorCode code, const std::string& message) {
  throw js_error(env, moecap::ErrorKind::Type, code, message);
}
void throw_js_range(Napi::Env env, moecap::ErrorCode code, const std::string& message) {
  throw js_error(env, moecap::ErrorKind::Range, code, message);
}
void throw_js_error(Napi::Env env, moecap::ErrorCode code, const std::string& message) {
  throw js_error(env, moecap::ErrorKind::Runtime, code, message);
}

}  // namespace moecap_binding
