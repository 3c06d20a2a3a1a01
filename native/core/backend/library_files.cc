#include "backend/library_files.h"

#include <dlfcn.h>
#include <sys/stat.h>

namespace moecap {
namespace {

std::string dir_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? "." : p.substr(0, s);
}

// The file this code was loaded from (the addon), to find the package root from it.
std::string addon_path() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&addon_path), &info) && info.dli_fname) return info.dli_fname;
  return "";
}

}  // namespace

bool regular_file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<std::string> package_library_candidates(const std::vector<std::string>& build_dirs,
                                                    const std::string& file) {
  std::vector<std::string> out;
  const std::string self = addon_path();
  if (self.empty()) return out;
  const std::string dir = dir_of(self);
  const std::string root = dir_of(dir_of(dir));
  for (const std::string& b : build_dirs) out.push_back(root + "/" + b + "/" + file);
  out.push_back(dir + "/" + file);
  return out;
}

std::string first_line(const char* text) {
  std::string t = text ? text : "";
  const size_t n = t.find('\n');
  return n == std::string::npos ? t : t.substr(0, n);
}

}  // namespace moecap
