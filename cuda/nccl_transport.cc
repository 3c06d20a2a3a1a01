#include "nccl_transport.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "error.h"

namespace moecap {

namespace {

[[noreturn]] void unavailable(const std::string& m) {
  throw Error(ErrorKind::Runtime, ErrorCode::BackendUnavailable, "NCCL not installed: " + m);
}

void check(const NcclApi& api, NcclResult r, const char* what) {
  if (r != 0)
    throw_runtime(std::string(what) + " failed: " + (api.error_string ? api.error_string(r) : "NCCL error") + " (" +
                      std::to_string(r) + ")",
                  ErrorCode::BackendUnavailable);
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw_runtime(std::string(what) + " failed: " + cudaGetErrorString(e));
}

NcclApi load() {
  NcclApi a;
  const char* env = std::getenv("MOECAP_NCCL_LIBRARY");
  a.library = env && *env ? env : "libnccl.so.2";
  void* h = dlopen(a.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = dlerror();
    unavailable("cannot load " + a.library + " (" + (why ? why : "dlopen failed") +
                "). Install NCCL 2.7 or newer (NVIDIA's libnccl2 package, or the nvidia-nccl-cu12 wheel) or set "
                "MOECAP_NCCL_LIBRARY to its libnccl.so.2");
  }
  auto sym = [&](const char* name) {
    void* p = dlsym(h, name);
    if (!p) unavailable(a.library + " has no " + name + " (NCCL 2.7 or newer is needed)");
    return p;
  };
  a.get_version = reinterpret_cast<decltype(a.get_version)>(sym("ncclGetVersion"));
  a.get_unique_id = reinterpret_cast<decltype(a.get_unique_id)>(sym("ncclGetUniqueId"));
  a.comm_init_rank = reinterpret_cast<decltype(a.comm_init_rank)>(sym("ncclCommInitRank"));
  a.comm_destroy = reinterpret_cast<decltype(a.comm_destroy)>(sym("ncclCommDestroy"));
  a.group_start = reinterpret_cast<decltype(a.group_start)>(sym("ncclGroupStart"));
  a.group_end = reinterpret_cast<decltype(a.group_end)>(sym("ncclGroupEnd"));
  a.send = reinterpret_cast<decltype(a.send)>(sym("ncclSend"));
  a.recv = reinterpret_cast<decltype(a.recv)>(sym("ncclRecv"));
  a.error_string = reinterpret_cast<decltype(a.error_string)>(sym("ncclGetErrorString"));
  check(a, a.get_version(&a.version), "ncclGetVersion");
  return a;
}

}  // namespace

const NcclApi& load_nccl() {
  // Loaded once; a failure is kept and thrown again (the library does not appear mid-run).
  static std::once_flag once;
  static NcclApi api;
  static std::string error;
  std::call_once(once, [] {
    try {
      api = load();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw Error(ErrorKind::Runtime, ErrorCode::BackendUnavailable, error);
  return api;
}

NcclTransport::NcclTransport(const NcclApi& api, int rank, int size, const NcclUniqueId& id, cudaStream_t stream)
    : api_(api), rank_(rank), size_(size), stream_(stream) {
  if (size < 1 || rank < 0 || rank >= size)
    throw_range("NCCL rank " + std::to_string(rank) + " of " + std::to_string(size) + " ranks");
  check(api_, api_.comm_init_rank(&comm_, size, id, rank), "ncclCommInitRank");
}

NcclTransport::~NcclTransport() {
  if (comm_) api_.comm_destroy(comm_);
}

void NcclTransport::alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) {
  const auto* s = static_cast<const char*>(send);
  auto* r = static_cast<char*>(recv);
  check(api_, api_.group_start(), "ncclGroupStart");
  NcclResult rc = 0;
  int64_t so = 0, ro = 0;
  for (int p = 0; p < size_ && rc == 0; ++p) {
    // Every peer's pair in one group: NCCL runs them together (no ordering deadlock).
    if (send_bytes[p] > 0) rc = api_.send(s + so, size_t(send_bytes[p]), kNcclUint8, p, comm_, stream_);
    if (rc == 0 && recv_bytes[p] > 0) rc = api_.recv(r + ro, size_t(recv_bytes[p]), kNcclUint8, p, comm_, stream_);
    so += send_bytes[p];
    ro += recv_bytes[p];
  }
  const NcclResult end = api_.group_end();  // closes the group even after a failed call
  check(api_, rc, "ncclSend/ncclRecv");
  check(api_, end, "ncclGroupEnd");
  check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize after the NCCL exchange");
}

NcclUniqueId NcclTransport::share_unique_id(const NcclApi& api, ExpertTransport& host) {
  NcclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (host.rank() == 0) check(api, api.get_unique_id(&id), "ncclGetUniqueId");
  broadcast_from_root(host, &id, sizeof id);
  return id;
}

}  // namespace moecap
