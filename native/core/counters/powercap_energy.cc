#include "counters/powercap_energy.h"

#if !defined(_WIN32)
#include <dirent.h>
#endif

#include <cerrno>
#include <cstring>
#include <fstream>

namespace moecap {
namespace {

bool read_u64(const std::string& path, uint64_t* v, int* err) {
  std::ifstream f(path);
  if (!f) {
    *err = errno;
    return false;
  }
  unsigned long long x = 0;
  if (!(f >> x)) {
    *err = EIO;
    return false;
  }
  *v = x;
  return true;
}

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

PowercapEnergy::PowercapEnergy(const std::string& root) {
#if defined(_WIN32)
  reason_ = "RAPL/powercap is a Linux interface (" + root + "); Windows exposes no package energy to programs";
#else
  DIR* d = opendir(root.c_str());
  if (!d) {
    reason_ = "no " + root + " (RAPL/powercap not exposed on this machine or VM)";
    return;
  }
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("intel-rapl:", 0) != 0) continue;
    Domain dom;
    dom.path = root + "/" + n;
    std::string label = read_line(dom.path + "/name");
    dom.name = label.empty() ? n : label + " (" + n + ")";
    int err = 0;
    uint64_t v = 0;
    dom.readable = read_u64(dom.path + "/energy_uj", &v, &err);
    read_u64(dom.path + "/max_energy_range_uj", &dom.max_range, &err);
    domains_.push_back(dom);
    if (!dom.readable && reason_.empty())
      reason_ = dom.path + "/energy_uj is not readable: " + std::strerror(err ? err : EACCES);
  }
  closedir(d);
  if (domains_.empty()) reason_ = "no intel-rapl:* domains under " + root + " (RAPL not exposed)";
#endif
}

void PowercapEnergy::start() {
  for (Domain& d : domains_) {
    int err = 0;
    if (d.readable) d.readable = read_u64(d.path + "/energy_uj", &d.start_uj, &err);
  }
}

CounterList PowercapEnergy::stop() {
  CounterList out;
  if (domains_.empty()) return probe();
  for (Domain& d : domains_) {
    CounterValue v;
    v.name = "energy:" + d.name;
    v.unit = "J";
    uint64_t now = 0;
    int err = 0;
    if (d.readable && read_u64(d.path + "/energy_uj", &now, &err)) {
      uint64_t delta = now >= d.start_uj ? now - d.start_uj : now + d.max_range - d.start_uj;
      v.available = true;
      v.value = double(delta) * 1e-6;
      v.source = "powercap:" + d.path;
    } else {
      v.reason = d.path + "/energy_uj is not readable";
    }
    out.push_back(v);
  }
  return out;
}

CounterList PowercapEnergy::probe() const {
  CounterList out;
  if (domains_.empty()) {
    CounterValue v;
    v.name = "energy";
    v.unit = "J";
    v.reason = reason_;
    out.push_back(v);
  }
  for (const Domain& d : domains_) {
    CounterValue v;
    v.name = "energy:" + d.name;
    v.unit = "J";
    v.available = d.readable;
    v.source = d.readable ? "powercap:" + d.path : "";
    v.reason = d.readable ? "" : reason_;
    out.push_back(v);
  }
  return out;
}

}  // namespace moecap
