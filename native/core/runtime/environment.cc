#include "runtime/environment.h"

#include <cstdlib>

#include "error.h"
#include "backend/library_files.h"
#include "kernels/kernel_table.h"

#if defined(_WIN32)
#include <windows.h>
#endif

namespace moecap {

// Whether `name` is set (even empty), and its value. On Windows from the process environment block,
// which Node's process.env writes: the C runtime's getenv keeps its own copy from start-up and
// would miss a variable set from JavaScript afterwards (names here are ASCII; values UTF-8).
static bool lookup(const char* name, std::string* value) {
#if defined(_WIN32)
  const std::wstring wname(name, name + std::char_traits<char>::length(name));
  std::wstring buf(256, L'\0');
  for (;;) {
    SetLastError(ERROR_SUCCESS);
    const DWORD n = GetEnvironmentVariableW(wname.c_str(), &buf[0], DWORD(buf.size()));
    if (n == 0 && GetLastError() == ERROR_ENVVAR_NOT_FOUND) return false;
    if (n < buf.size()) {
      buf.resize(n);
      break;
    }
    buf.assign(n, L'\0');  // n: the size needed, terminator included
  }
  const int b = WideCharToMultiByte(CP_UTF8, 0, buf.data(), int(buf.size()), nullptr, 0, nullptr, nullptr);
  value->assign(size_t(b > 0 ? b : 0), '\0');
  if (b > 0) WideCharToMultiByte(CP_UTF8, 0, buf.data(), int(buf.size()), &(*value)[0], b, nullptr, nullptr);
  return true;
#else
  const char* v = std::getenv(name);
  if (v) *value = v;
  return v != nullptr;
#endif
}

static std::string var(const char* name) {
  std::string v;
  return lookup(name, &v) ? v : std::string();
}

Environment read_environment() {
  Environment e;
  e.isa = var("MOECAP_ISA");
  e.backend = var("MOECAP_BACKEND");
  e.pin_threads = var("MOECAP_PIN") != "0";
  std::string ignored;
  e.huge_pages = !lookup("MOECAP_NO_HUGEPAGES", &ignored);
  e.cuda_library = var("MOECAP_CUDA_LIBRARY");
  e.cuda_driver = var("MOECAP_CUDA_DRIVER");
  if (e.cuda_driver.empty()) e.cuda_driver = kCudaDriverFile;
  e.tmpdir = var("TMPDIR");
#if defined(_WIN32)
  if (e.tmpdir.empty()) e.tmpdir = var("TEMP");
  if (e.tmpdir.empty()) e.tmpdir = ".";
#else
  if (e.tmpdir.empty()) e.tmpdir = "/tmp";
#endif
  e.mpi_library = var("MOECAP_MPI_LIBRARY");
  std::string size = var("OMPI_COMM_WORLD_SIZE");
  if (size.empty()) size = var("PMI_SIZE");
  e.launcher_size = size.empty() ? 0 : std::atoi(size.c_str());
  e.open_mpi_launcher = !var("OMPI_COMM_WORLD_SIZE").empty() || !var("PMIX_RANK").empty();
  std::string local = var("OMPI_COMM_WORLD_LOCAL_RANK");
  if (local.empty()) local = var("MPI_LOCALRANKID");
  e.local_rank = local.empty() ? -1 : std::atoi(local.c_str());
  e.launched_by_mpi = !size.empty() || e.open_mpi_launcher;
  return e;
}

std::string env_isa(const Environment& env, const std::string& option) {
  if (!option.empty()) {
    check_isa_runs(option, "isa");
    return option;
  }
  if (env.isa.empty()) return "auto";
  check_isa_runs(env.isa, "MOECAP_ISA");
  return env.isa;
}

std::string env_backend(const Environment& env) {
  const std::string& b = env.backend;
  if (!b.empty() && b != "cpu" && b != "cuda" && b != "auto")
    throw_option("MOECAP_BACKEND must be 'cpu', 'cuda' or 'auto', got '" + b + "'");
  return b;
}

}  // namespace moecap
