#include "offload_stats.h"

#include <algorithm>

namespace moecap_binding {

Napi::Object offload_stats_object(Napi::Env env, const moecap::OffloadStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("passes", double(s.passes));
  o.Set("hits", double(s.hits));
  o.Set("misses", double(s.misses));
  const double acc = double(s.hits + s.misses);
  o.Set("hitRate", acc > 0 ? Napi::Number::New(env, double(s.hits) / acc) : env.Null());
  o.Set("evictions", double(s.evictions));
  o.Set("loads", double(s.loads));
  o.Set("bytesRead", s.bytes_read);
  o.Set("ioNs", double(s.io_ns));
  o.Set("stallNs", double(s.stall_ns));
  o.Set("prefetchIssued", double(s.prefetch_issued));
  o.Set("prefetchUsed", double(s.prefetch_used));
  o.Set("waves", double(s.waves));
  o.Set("verifyNs", double(s.verify_ns));
  o.Set("tierBytesPerSecond",
        s.io_ns > 0 ? Napi::Number::New(env, s.bytes_read / (double(s.io_ns) * 1e-9)) : env.Null());
  return o;
}

Napi::Object offload_info_object(Napi::Env env, const moecap::ExpertCache& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("capacity", c.capacity());
  o.Set("policy", moecap::policy_name(c.policy()));
  o.Set("prefetch", c.async());
  o.Set("path", c.file().path());
  o.Set("scratch", c.file().scratch());
  o.Set("coldCache", c.file().cold());
  o.Set("directIo", c.file().direct());
  o.Set("expertBytes", double(c.file().expert_bytes()));
  o.Set("fileBytes", double(c.file().file_bytes()));
  std::vector<int> r = c.resident();
  Napi::Int32Array a = Napi::Int32Array::New(env, r.size());
  std::copy(r.begin(), r.end(), a.Data());
  o.Set("resident", a);
  o.Set("stats", offload_stats_object(env, c.stats()));
  return o;
}

}  // namespace moecap_binding
