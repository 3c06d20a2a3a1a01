// libmoecap_mpi.so: the C ABI of native/core/backend/ep_abi.h over MPI. Built by
// scripts/build-mpi.js with whatever mpicxx is found; loaded by the addon at run time.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "backend/ep_abi.h"

namespace {

std::string g_error;
std::string g_runtime;
bool g_initialised = false;

int fail(const std::string& what, int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int n = 0;
  if (MPI_Error_string(rc, text, &n) != MPI_SUCCESS) n = 0;
  g_error = what + " failed: " + std::string(text, size_t(n));
  return 1;
}

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

}  // namespace

extern "C" {

int moecap_ep_abi_version(void) { return MOECAP_EP_ABI_VERSION; }

const char* moecap_ep_built_mpi(void) {
#if defined(OMPI_MAJOR_VERSION)
  static const std::string v = "Open MPI " + std::to_string(OMPI_MAJOR_VERSION) + "." +
                               std::to_string(OMPI_MINOR_VERSION) + "." + std::to_string(OMPI_RELEASE_VERSION);
#elif defined(MPICH_VERSION)
  static const std::string v = std::string("MPICH ") + MPICH_VERSION;
#else
  static const std::string v = "MPI " + std::to_string(MPI_VERSION) + "." + std::to_string(MPI_SUBVERSION);
#endif
  return v.c_str();
}

const char* moecap_ep_runtime_mpi(void) {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int n = 0;
  MPI_Get_library_version(text, &n);
  g_runtime.assign(text, size_t(n));
  const size_t nl = g_runtime.find_first_of(",\n");
  if (nl != std::string::npos) g_runtime.resize(nl);
  return g_runtime.c_str();
}

int moecap_ep_init(int* rank, int* size) {
  if (!g_initialised) {
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return fail("MPI_Init_thread", rc);
    // Errors come back as codes (then messages), not as an abort inside the library.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED) {
      g_error = "this MPI provides thread level " + std::to_string(provided) +
                ", expert parallelism needs MPI_THREAD_SERIALIZED (calls come from Node's worker threads)";
      return 1;
    }
    g_initialised = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  return 0;
}

int moecap_ep_alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) {
  const int P = world_size();
  const size_t n = static_cast<size_t>(P);
  std::vector<int> sc(n), sd(n), rc(n), rd(n);
  int64_t so = 0, ro = 0;
  for (int p = 0; p < P; ++p) {
    // MPI counts are ints: a pass this large must be split by the caller.
    if (send_bytes[p] > INT_MAX || recv_bytes[p] > INT_MAX || so > INT_MAX || ro > INT_MAX) {
      g_error = "an all-to-all block or offset exceeds 2^31-1 bytes (split the batch)";
      return 1;
    }
    sc[size_t(p)] = int(send_bytes[p]);
    sd[size_t(p)] = int(so);
    rc[size_t(p)] = int(recv_bytes[p]);
    rd[size_t(p)] = int(ro);
    so += send_bytes[p];
    ro += recv_bytes[p];
  }
  // MPI forbids null buffers only in theory; give it a valid address for empty exchanges.
  static char empty[1];
  const int r = MPI_Alltoallv(so ? send : empty, sc.data(), sd.data(), MPI_BYTE, ro ? recv : empty, rc.data(),
                              rd.data(), MPI_BYTE, MPI_COMM_WORLD);
  return r == MPI_SUCCESS ? 0 : fail("MPI_Alltoallv", r);
}

int moecap_ep_pingpong(int64_t bytes, int iters, double* seconds) {
  int me = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  const int P = world_size();
  std::vector<char> buf(size_t(std::max<int64_t>(bytes, 1)), char(me + 1));
  double t = 0;
  if (P >= 2 && me < 2) {
    const int peer = 1 - me;
    for (int i = -2; i < iters; ++i) {  // two warm-up round trips
      if (i == 0) t = MPI_Wtime();
      int r;
      if (me == 0) {
        r = MPI_Send(buf.data(), int(bytes), MPI_BYTE, peer, 7, MPI_COMM_WORLD);
        if (r == MPI_SUCCESS)
          r = MPI_Recv(buf.data(), int(bytes), MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else {
        r = MPI_Recv(buf.data(), int(bytes), MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (r == MPI_SUCCESS) r = MPI_Send(buf.data(), int(bytes), MPI_BYTE, peer, 7, MPI_COMM_WORLD);
      }
      if (r != MPI_SUCCESS) return fail("ping-pong", r);
    }
    t = (MPI_Wtime() - t) / iters;
  }
  const int r = MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (r != MPI_SUCCESS) return fail("MPI_Bcast", r);
  *seconds = t;
  return 0;
}

int moecap_ep_alltoall(int64_t bytes, int iters, double* seconds) {
  const int P = world_size();
  if (bytes > INT_MAX / P) {
    g_error = "all-to-all calibration block too large";
    return 1;
  }
  std::vector<char> s(size_t(bytes) * P + 1, 1), d(size_t(bytes) * P + 1);
  double t = 0;
  for (int i = -2; i < iters; ++i) {
    if (i == 0) {
      MPI_Barrier(MPI_COMM_WORLD);
      t = MPI_Wtime();
    }
    const int r = MPI_Alltoall(s.data(), int(bytes), MPI_BYTE, d.data(), int(bytes), MPI_BYTE, MPI_COMM_WORLD);
    if (r != MPI_SUCCESS) return fail("MPI_Alltoall", r);
  }
  t = (MPI_Wtime() - t) / iters;
  double slowest = 0;
  const int r = MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (r != MPI_SUCCESS) return fail("MPI_Allreduce", r);
  *seconds = slowest;
  return 0;
}

int moecap_ep_barrier(void) {
  const int r = MPI_Barrier(MPI_COMM_WORLD);
  return r == MPI_SUCCESS ? 0 : fail("MPI_Barrier", r);
}

void moecap_ep_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

int moecap_ep_finalize(void) {
  int done = 0;
  MPI_Finalized(&done);
  if (!g_initialised || done) return 0;
  const int r = MPI_Finalize();
  return r == MPI_SUCCESS ? 0 : fail("MPI_Finalize", r);
}

const char* moecap_ep_last_error(void) { return g_error.c_str(); }

}  // extern "C"
