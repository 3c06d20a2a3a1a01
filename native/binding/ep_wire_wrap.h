// The wire sizes of an expert-parallel pass (ep/ep_wire.h) for the planner in lib/ep_plan.ts.
#pragma once
#include <napi.h>

namespace moecap_binding {

// epWireSizes(dtype, hidden, experts) → {activationBytes, recordBytes, resultBytes, countsBytes}.
Napi::Value EpWireSizes(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
