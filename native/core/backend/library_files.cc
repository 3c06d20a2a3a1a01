#include "backend/library_files.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#include <sys/stat.h>
#endif

namespace moecap {
namespace {

#if defined(_WIN32)
std::wstring wide(const std::string& s) {
  const int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), int(s.size()), nullptr, 0);
  std::wstring w(size_t(n > 0 ? n : 0), L'\0');
  if (n > 0) MultiByteToWideChar(CP_UTF8, 0, s.data(), int(s.size()), &w[0], n);
  return w;
}
std::string utf8(const wchar_t* w, int n) {
  const int b = WideCharToMultiByte(CP_UTF8, 0, w, n, nullptr, 0, nullptr, nullptr);
  std::string s(size_t(b > 0 ? b : 0), '\0');
  if (b > 0) WideCharToMultiByte(CP_UTF8, 0, w, n, &s[0], b, nullptr, nullptr);
  return s;
}
// The system's message for the last error, e.g. "The specified module could not be found."
std::string last_error_text() {
  const DWORD e = GetLastError();
  wchar_t buf[512];
  DWORD n =
      FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, e, 0, buf, 512, nullptr);
  while (n > 0 && (buf[n - 1] == L'\n' || buf[n - 1] == L'\r' || buf[n - 1] == L' ')) --n;
  return n ? utf8(buf, int(n)) + " (error " + std::to_string(e) + ")" : "error " + std::to_string(e);
}
#endif

std::string dir_of(const std::string& p) {
#if defined(_WIN32)
  const size_t s = p.find_last_of("/\\");
#else
  const size_t s = p.rfind('/');
#endif
  return s == std::string::npos ? "." : p.substr(0, s);
}

// The file this code was loaded from (the addon), to find the package root from it.
std::string addon_path() {
#if defined(_WIN32)
  HMODULE self = nullptr;
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          reinterpret_cast<LPCWSTR>(&addon_path), &self))
    return "";
  wchar_t buf[32768];
  const DWORD n = GetModuleFileNameW(self, buf, 32768);
  return n > 0 && n < 32768 ? utf8(buf, int(n)) : "";
#else
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&addon_path), &info) && info.dli_fname) return info.dli_fname;
  return "";
#endif
}

}  // namespace

bool regular_file_exists(const std::string& path) {
#if defined(_WIN32)
  const DWORD a = GetFileAttributesW(wide(path).c_str());
  return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
#else
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
#endif
}

void* open_library(const std::string& path, bool global, std::string* error) {
#if defined(_WIN32)
  (void)global;
  // A path with a folder: its own folder is searched for the DLLs it depends on.
  const bool has_dir = path.find_first_of("/\\") != std::string::npos;
  HMODULE h = LoadLibraryExW(wide(path).c_str(), nullptr, has_dir ? LOAD_WITH_ALTERED_SEARCH_PATH : 0);
  if (!h && error) *error = last_error_text();
  return reinterpret_cast<void*>(h);
#else
  void* h = dlopen(path.c_str(), RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
  if (!h && error) *error = first_line(dlerror());
  return h;
#endif
}

void* library_symbol(void* handle, const char* name) {
#if defined(_WIN32)
  return reinterpret_cast<void*>(GetProcAddress(reinterpret_cast<HMODULE>(handle), name));
#else
  return dlsym(handle, name);
#endif
}

void close_library(void* handle) {
#if defined(_WIN32)
  FreeLibrary(reinterpret_cast<HMODULE>(handle));
#else
  dlclose(handle);
#endif
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
