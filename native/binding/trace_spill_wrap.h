// A JSONL routing trace spilled per layer by the core (native/core/trace/jsonl_trace_reader):
//   traceSpillOpen({file, dir, experts?, topK?, maxLineBytes}) → handle
//   traceSpillRun(handle) → Promise<{line, text} | null>: reads off the JS thread up to the next
//     line the core's canonical parser does not read (null: the end of the file)
//   traceSpillRecord(handle, line, values: Float64Array [layer, token, ids...], json: string[] |
//     null, experts is an array: boolean): such a line's values, parsed by JS, checked by the core
//   traceSpillFinish(handle) → {topK, tokens, maxExpert, idBytes};  traceSpillClose(handle)
#pragma once
#include <napi.h>

namespace moecap_binding {

Napi::Value TraceSpillOpen(const Napi::CallbackInfo& info);
Napi::Value TraceSpillRun(const Napi::CallbackInfo& info);
Napi::Value TraceSpillRecord(const Napi::CallbackInfo& info);
Napi::Value TraceSpillFinish(const Napi::CallbackInfo& info);
Napi::Value TraceSpillClose(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
