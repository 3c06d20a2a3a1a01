// readTraceIds({file, offset, tokens, topK, idBytes, layer, experts?, checksum?}) → Int32Array:
// one layer's id block of a trace file, read, checked (experts and checksum, a 16-hex-digit
// xxhash64, given: a binary trace) and widened by the core (native/core/trace/trace_ids.h).
// Synchronous: a million-token layer takes milliseconds.
#pragma once
#include <napi.h>

namespace moecap_binding {

Napi::Value ReadTraceIds(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
