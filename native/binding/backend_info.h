// backendInfo(requested?) → { backend: 'cpu'|'cuda', requested, reason, library, driverVersion,
// runtimeVersion }: which backend a layer would run on here, and why.
#pragma once
#include <napi.h>

namespace moecap_binding {
Napi::Value BackendInfo(const Napi::CallbackInfo& info);
}
