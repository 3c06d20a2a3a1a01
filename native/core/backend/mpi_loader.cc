#include "backend/mpi_loader.h"

#include <cctype>
#include <cstdlib>
#include <mutex>

#include "backend/library_files.h"
#include "error.h"

namespace moecap {
namespace {

[[noreturn]] void unavailable(const std::string& m) { throw_runtime(m, ErrorCode::BackendUnavailable); }

// "Open MPI" | "MPICH" | "" and the major version, from "Open MPI v4.1.4" or "MPICH 4.0.2".
std::pair<std::string, int> mpi_family(const std::string& v) {
  std::string vendor = v.find("Open MPI") != std::string::npos ? "Open MPI"
                       : v.find("MPICH") != std::string::npos  ? "MPICH"
                                                               : "";
  int major = 0;
  for (size_t i = 0; i < v.size(); ++i)
    if (isdigit(static_cast<unsigned char>(v[i]))) {
      major = std::atoi(v.c_str() + i);
      break;
    }
  return {vendor, major};
}

std::mutex g_mutex;
EpMpiApi g_api;
EpWorld g_world;
bool g_ready = false;

void check_launch(const Environment& env, int ranks) {
  const std::string cmd =
      "mpirun -np " + std::to_string(ranks) + " npx moecap run --ep " + std::to_string(ranks) + " ...";
  if (!env.launched_by_mpi)
    unavailable("expert parallelism over " + std::to_string(ranks) +
                " ranks needs one process per rank started by mpirun (no OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK "
                "in the environment): launch it as `" +
                cmd +
                "` (as root also set OMPI_ALLOW_RUN_AS_ROOT=1 "
                "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)");
  if (env.launcher_size > 0 && env.launcher_size != ranks)
    unavailable("mpirun started " + std::to_string(env.launcher_size) + " ranks but expert parallelism asks for " +
                std::to_string(ranks) + ": the two must match (`" + cmd + "`)");
}

std::string find_library(const Environment& env) {
  const std::vector<std::string> tried = mpi_library_candidates(env);
  for (const auto& p : tried)
    if (regular_file_exists(p)) return p;
  std::string list;
  for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p;
  unavailable(
      std::string(kMpiLibraryFile) + " not found (looked in: " + list +
      "): build it with `npm run build:mpi` (needs an MPI's mpicxx, e.g. apt-get install openmpi-bin libopenmpi-dev)");
}

void load(const std::string& path) {
  // RTLD_GLOBAL: Open MPI's own plugins resolve libmpi's symbols from the global scope.
  std::string why;
  void* h = open_library(path, true, &why);
  if (!h) {
    if (why.find("libmpi") != std::string::npos)
      unavailable("libmpi missing: " + path + " was built against an MPI library that is not installed here (" + why +
                  "); install that MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) or rebuild it with "
                  "`npm run build:mpi` against the MPI you launch with");
    unavailable(std::string(kMpiLibraryFile) + " at " + path + " failed to load: " + why);
  }
  EpMpiApi a;
  a.handle = h;
  bool ok = true;
  auto sym = [&](const char* n) {
    void* s = library_symbol(h, n);
    if (!s) ok = false;
    return s;
  };
  a.abi_version = reinterpret_cast<decltype(a.abi_version)>(sym("moecap_ep_abi_version"));
  a.built_mpi = reinterpret_cast<decltype(a.built_mpi)>(sym("moecap_ep_built_mpi"));
  a.runtime_mpi = reinterpret_cast<decltype(a.runtime_mpi)>(sym("moecap_ep_runtime_mpi"));
  a.init = reinterpret_cast<decltype(a.init)>(sym("moecap_ep_init"));
  a.alltoallv = reinterpret_cast<decltype(a.alltoallv)>(sym("moecap_ep_alltoallv"));
  a.pingpong = reinterpret_cast<decltype(a.pingpong)>(sym("moecap_ep_pingpong"));
  a.alltoall = reinterpret_cast<decltype(a.alltoall)>(sym("moecap_ep_alltoall"));
  a.barrier = reinterpret_cast<decltype(a.barrier)>(sym("moecap_ep_barrier"));
  a.abort = reinterpret_cast<decltype(a.abort)>(sym("moecap_ep_abort"));
  a.finalize = reinterpret_cast<decltype(a.finalize)>(sym("moecap_ep_finalize"));
  a.last_error = reinterpret_cast<decltype(a.last_error)>(sym("moecap_ep_last_error"));
  if (!ok) {
    close_library(h);
    unavailable(
        path + " lacks the moecap_ep_* C ABI symbols (not a moecap MPI library?); rebuild it with `npm run build:mpi`");
  }
  if (a.abi_version() != MOECAP_EP_ABI_VERSION) {
    const int v = a.abi_version();
    close_library(h);
    unavailable(path + " has C ABI version " + std::to_string(v) + ", this addon needs " +
                std::to_string(MOECAP_EP_ABI_VERSION) + " (rebuild it: npm run build:mpi)");
  }
  g_api = a;
}

// Built against one MPI, running another (LD_LIBRARY_PATH), or started by another MPI's mpirun.
void check_match(const Environment& env, const std::string& path) {
  const std::string built = g_api.built_mpi(), running = g_api.runtime_mpi();
  const auto b = mpi_family(built), r = mpi_family(running);
  const std::string fix = "; rebuild with `npm run build:mpi` against the MPI whose mpirun you launch with";
  if (b.first != r.first || b.second != r.second)
    unavailable("mismatched MPI: " + path + " was built against " + built + " but " + running + " is loaded" + fix);
  if (b.first == "Open MPI" && !env.open_mpi_launcher)
    unavailable("mismatched MPI: " + path + " uses " + built +
                " but this process was started by another MPI's mpirun (PMI_SIZE set, no OMPI_COMM_WORLD_SIZE)" + fix);
}

}  // namespace

std::vector<std::string> mpi_library_candidates(const Environment& env) {
  if (!env.mpi_library.empty()) return {env.mpi_library};
  return package_library_candidates({"build-mpi"}, kMpiLibraryFile);
}

const EpWorld& ep_world(int ranks) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_ready) {
    const Environment env = read_environment();
    check_launch(env, ranks);
    const std::string path = find_library(env);
    if (!g_api.handle) load(path);
    check_match(env, path);
    EpWorld w;
    w.api = &g_api;
    w.library = path;
    w.built_mpi = g_api.built_mpi();
    w.runtime_mpi = g_api.runtime_mpi();
    if (g_api.init(&w.rank, &w.size) != 0) unavailable(std::string("MPI initialisation failed: ") + g_api.last_error());
    g_world = w;
    g_ready = true;
  }
  if (g_world.size != ranks)
    unavailable("MPI_COMM_WORLD has " + std::to_string(g_world.size) + " ranks but expert parallelism asks for " +
                std::to_string(ranks) + ": the two must match (mpirun -np " + std::to_string(ranks) + ")");
  return g_world;
}

const EpWorld* ep_world_if_loaded() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_ready ? &g_world : nullptr;
}

void MpiTransport::alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) {
  if (w_.api->alltoallv(send, send_bytes, recv, recv_bytes) != 0)
    throw_runtime(std::string("expert exchange: ") + w_.api->last_error(), ErrorCode::BackendUnavailable);
}

LinkCalibration calibrate_link(const EpWorld& w) {
  LinkCalibration c;
  auto check = [&](int rc) {
    if (rc != 0) throw_runtime(std::string("link calibration: ") + w.api->last_error(), ErrorCode::BackendUnavailable);
  };
  for (int64_t b : {int64_t(8), int64_t(4096), int64_t(65536), int64_t(1) << 20, int64_t(4) << 20}) {
    double s = 0;
    check(w.api->pingpong(b, b >= (int64_t(1) << 20) ? 20 : 200, &s));
    c.pingpong.push_back({b, s / 2});
  }
  for (int64_t b : {int64_t(1024), int64_t(16384), int64_t(262144), int64_t(1) << 20}) {
    double s = 0;
    check(w.api->alltoall(b, b >= 262144 ? 10 : 50, &s));
    c.alltoall.push_back({b, s});
  }
  c.latency_s = c.pingpong.front().seconds;
  const LinkPoint& big = c.pingpong.back();
  c.bandwidth_bytes_s = big.seconds > 0 ? double(big.bytes) / big.seconds : 0;
  return c;
}

}  // namespace moecap
