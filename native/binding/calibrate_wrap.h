// calibrate(options?) → Promise<ceilings>: this machine's read bandwidth and arithmetic peaks
// (native/core/calibrate), measured off the JS thread.
#pragma once
#include <napi.h>

namespace moecap_binding {

Napi::Value Calibrate(const Napi::CallbackInfo& info);
Napi::Value MeasureFileRead(const Napi::CallbackInfo& info);

}  // namespace moecap_binding
