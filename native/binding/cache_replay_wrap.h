// replayCache(options) → Promise<counts[]>: one layer's routing replayed through the core's cache
// policies and Belády's optimal (native/core/offload/cache_replay), off the JS thread.
#pragma once
#include <napi.h>

namespace moecap_binding {

Napi::Value ReplayCache(const Napi::CallbackInfo& info);
Napi::Value XxHash64Hex(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
