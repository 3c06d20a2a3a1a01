#include "backend/cuda_loader.h"

#include <mutex>

#include "backend/library_files.h"
#include "error.h"
#include "runtime/environment.h"

namespace moecap {
namespace {

std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

// The driver: cuInit + cuDriverGetVersion + cuDeviceGetCount through dlopen.
bool probe_driver(const std::string& name, std::string& reason, int& driver_version) {
  std::string error;
  void* h = open_library(name, false, &error);
  if (!h) {
    reason = name + " not found (no NVIDIA driver on this machine): " + error;
    return false;
  }
  using InitFn = int (*)(unsigned);
  using IntFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(library_symbol(h, "cuInit"));
  auto ver = reinterpret_cast<IntFn>(library_symbol(h, "cuDriverGetVersion"));
  auto count = reinterpret_cast<IntFn>(library_symbol(h, "cuDeviceGetCount"));
  if (!init || !ver || !count) {
    reason = name + " lacks cuInit/cuDriverGetVersion/cuDeviceGetCount";
    return false;
  }
  int n = 0;
  const int rc = init(0);
  ver(&driver_version);
  if (rc != 0) {
    // 100 = CUDA_ERROR_NO_DEVICE; anything else is a driver problem worth naming.
    reason = rc == 100 ? "no CUDA device" : "no CUDA device (cuInit failed with CUresult " + std::to_string(rc) + ")";
    return false;
  }
  if (count(&n) != 0 || n <= 0) {
    reason = "no CUDA device";
    return false;
  }
  return true;  // the driver handle stays open: the runtime inside the library uses it
}

std::mutex g_mutex;
CudaApi g_api;  // process-wide: a dlopened library is process-wide anyway

bool load_library(const std::string& path, std::string& reason) {
  std::string error;
  void* h = open_library(path, false, &error);
  if (!h) {
    reason = std::string(kCudaLibraryFile) + " at " + path + " failed to load: " + error;
    return false;
  }
  CudaApi a;
  a.handle = h;
  a.path = path;
  bool ok = true;
  auto sym = [&](const char* n) {
    void* s = library_symbol(h, n);
    if (!s) ok = false;
    return s;
  };
  a.abi_version = reinterpret_cast<int (*)()>(sym("moecap_cuda_abi_version"));
  a.runtime_version = reinterpret_cast<int (*)()>(sym("moecap_cuda_runtime_version"));
  a.probe = reinterpret_cast<int (*)(int, moecap_cuda_probe_t*)>(sym("moecap_cuda_probe"));
  a.layer_create = reinterpret_cast<decltype(a.layer_create)>(sym("moecap_cuda_layer_create"));
  a.layer_forward = reinterpret_cast<decltype(a.layer_forward)>(sym("moecap_cuda_layer_forward"));
  a.layer_prefetch = reinterpret_cast<decltype(a.layer_prefetch)>(sym("moecap_cuda_layer_prefetch"));
  a.layer_pin_static = reinterpret_cast<decltype(a.layer_pin_static)>(sym("moecap_cuda_layer_pin_static"));
  a.layer_device_bytes = reinterpret_cast<decltype(a.layer_device_bytes)>(sym("moecap_cuda_layer_device_bytes"));
  a.layer_destroy = reinterpret_cast<decltype(a.layer_destroy)>(sym("moecap_cuda_layer_destroy"));
  a.nvml_sample = reinterpret_cast<decltype(a.nvml_sample)>(sym("moecap_cuda_nvml_sample"));
  a.last_error = reinterpret_cast<const char* (*)()>(sym("moecap_cuda_last_error"));
  if (!ok) {
    reason = path + " lacks the moecap_cuda_* C ABI symbols (not a moecap CUDA backend?)";
    close_library(h);
    return false;
  }
  if (a.abi_version() != MOECAP_CUDA_ABI_VERSION) {
    reason = path + " has C ABI version " + std::to_string(a.abi_version()) + ", this addon needs " +
             std::to_string(MOECAP_CUDA_ABI_VERSION) + " (rebuild it: npm run build:cuda)";
    close_library(h);
    return false;
  }
  // Looked up after the version check, so an older library is refused for its version.
  a.act_row_bytes = reinterpret_cast<decltype(a.act_row_bytes)>(sym("moecap_cuda_act_row_bytes"));
  a.layer_ep_route = reinterpret_cast<decltype(a.layer_ep_route)>(sym("moecap_cuda_layer_ep_route"));
  a.layer_ep_compute = reinterpret_cast<decltype(a.layer_ep_compute)>(sym("moecap_cuda_layer_ep_compute"));
  a.layer_ep_combine = reinterpret_cast<decltype(a.layer_ep_combine)>(sym("moecap_cuda_layer_ep_combine"));
  a.nccl_unique_id = reinterpret_cast<decltype(a.nccl_unique_id)>(sym("moecap_cuda_nccl_unique_id"));
  a.nccl_create = reinterpret_cast<decltype(a.nccl_create)>(sym("moecap_cuda_nccl_create"));
  a.nccl_alltoallv = reinterpret_cast<decltype(a.nccl_alltoallv)>(sym("moecap_cuda_nccl_alltoallv"));
  a.nccl_destroy = reinterpret_cast<decltype(a.nccl_destroy)>(sym("moecap_cuda_nccl_destroy"));
  if (!ok) {
    reason = path + " lacks the expert-parallel moecap_cuda_* symbols (rebuild it: npm run build:cuda)";
    close_library(h);
    return false;
  }
  g_api = a;
  return true;
}

}  // namespace

std::vector<std::string> cuda_library_candidates() { return cuda_library_candidates(read_environment()); }

std::vector<std::string> cuda_library_candidates(const Environment& env) {
  if (!env.cuda_library.empty()) return {env.cuda_library};
  // The addon sits in <root>/build/Release or <root>/prebuilds/<platform>/: try the package root's
  // CUDA build folders (never prebuilds/<platform>/ itself), then the addon's own folder.
  return package_library_candidates({"build-cuda", "cuda/build"}, kCudaLibraryFile);
}

BackendChoice choose_backend(const std::string& requested_arg) {
  BackendChoice c;
  const Environment env = read_environment();
  std::string req = requested_arg.empty() ? "auto" : requested_arg;
  if (req != "cpu" && req != "cuda" && req != "auto")
    throw_option("backend must be 'cpu', 'cuda' or 'auto', got '" + requested_arg + "'");
  const std::string forced = env_backend(env);
  if (!forced.empty()) req = forced;
  c.requested = req;
  c.backend = "cpu";
  if (req == "cpu") {
    c.reason = !forced.empty() ? "MOECAP_BACKEND=cpu" : "backend 'cpu' requested";
    return c;
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!probe_driver(env.cuda_driver, c.reason, c.driver_version)) return c;
  if (!g_api.handle) {
    const std::vector<std::string> tried = cuda_library_candidates(env);
    std::string found;
    for (const auto& p : tried)
      if (regular_file_exists(p)) {
        found = p;
        break;
      }
    if (found.empty()) {
      std::string list;
      for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p;
      c.reason =
          std::string(kCudaLibraryFile) + " not found (looked in: " + list + "); build it with `npm run build:cuda`";
      return c;
    }
    if (!load_library(found, c.reason)) return c;
  }
  c.library = g_api.path;
  c.runtime_version = g_api.runtime_version();
  if (c.driver_version < c.runtime_version / 1000 * 1000) {
    c.reason = "driver supports CUDA " + version_text(c.driver_version) + ", library needs " +
               version_text(c.runtime_version) + " (" + g_api.path + ")";
    return c;
  }
  moecap_cuda_probe_t p{};
  p.size = sizeof p;
  if (g_api.probe(0, &p) != 0) {
    c.reason = p.reason[0] ? std::string(p.reason) : std::string("no CUDA device");
    return c;
  }
  c.backend = "cuda";
  c.api = &g_api;
  c.reason = std::string(p.name) + " (sm_" + std::to_string(p.cc_major) + std::to_string(p.cc_minor) + ", " +
             std::to_string(p.device_count) + " device" + (p.device_count == 1 ? "" : "s") + ")";
  return c;
}

}  // namespace moecap
