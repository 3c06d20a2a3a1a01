// How a layer offloads its routed experts: where the slow tier lives, how many experts stay
// resident, which eviction policy and whether loads run ahead on the I/O thread.
#pragma once
#include <string>

namespace moecap {

enum class CachePolicy { LRU, LFU, LFRU, Static };

struct OffloadConfig {
  bool enabled = false;
  int capacity_experts = 0;   // resident slots; 0 = use capacity_bytes
  double capacity_bytes = 0;  // resident budget in bytes (floor to whole experts)
  // With `fraction`: that share of the experts the layer holds (an expert-parallel rank holds a
  // part; capacity_experts is the same share of all experts, for layers that hold them all).
  double capacity_fraction = 0;
  CachePolicy policy = CachePolicy::LRU;
  bool prefetch = true;  // loads on the I/O thread, overlapped with compute
  std::string path;      // weights file; empty = a scratch file in $TMPDIR, removed on close
  bool cold = false;     // drop the file's page cache so reads reach the device
  std::string progress;  // non-empty: a progress bar with this label on stderr while the file is written
};

inline const char* policy_name(CachePolicy p) {
  switch (p) {
    case CachePolicy::LRU: return "lru";
    case CachePolicy::LFU: return "lfu";
    case CachePolicy::LFRU: return "lfru";
    case CachePolicy::Static: return "static";
  }
  return "?";
}

inline bool parse_policy(const std::string& s, CachePolicy* out) {
  if (s == "lru") *out = CachePolicy::LRU;
  else if (s == "lfu") *out = CachePolicy::LFU;
  else if (s == "lfru") *out = CachePolicy::LFRU;
  else if (s == "static") *out = CachePolicy::Static;
  else return false;
  return true;
}

}  // namespace moecap
