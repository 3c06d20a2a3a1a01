// JS views of the offload counters (shared by NativeMoeLayer and NativeMoeModel).
#pragma once
#include <napi.h>

#include "offload/expert_cache.h"

namespace moecap_binding {

// { passes, hits, misses, hitRate, evictions, loads, bytesRead, ioNs, stallNs, prefetchIssued,
//   prefetchUsed, waves, tierBytesPerSecond } — rates are null when undefined (no access / no I/O).
Napi::Object offload_stats_object(Napi::Env env, const moecap::OffloadStats& s);

// The cache's configuration and cumulative counters: { capacity, policy, prefetch, path, scratch,
// coldCache, expertBytes, fileBytes, resident, stats }.
Napi::Object offload_info_object(Napi::Env env, const moecap::ExpertCache& c);

}  // namespace moecap_binding
