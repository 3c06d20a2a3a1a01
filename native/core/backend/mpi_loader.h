// Expert parallelism's MPI: checks the process was started by mpirun with the ranks asked for,
// dlopens libmoecap_mpi.so (built by `npm run build:mpi`) and initialises MPI, only when expert
// parallelism is asked for, so the addon has no link-time dependency on MPI. Every refusal is one
// ERR_BACKEND_UNAVAILABLE error saying which of these it is and what to do: not launched by
// mpirun, rank count differs from --ep, library not built, libmpi missing, MPI mismatched.
// Test hook: MOECAP_MPI_LIBRARY (exact path of libmoecap_mpi.so).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/ep_abi.h"
#include "ep/expert_transport.h"
#include "runtime/environment.h"

namespace moecap {

struct EpMpiApi {
  void* handle = nullptr;
  int (*abi_version)() = nullptr;
  const char* (*built_mpi)() = nullptr;
  const char* (*runtime_mpi)() = nullptr;
  int (*init)(int*, int*) = nullptr;
  int (*alltoallv)(const void*, const int64_t*, void*, const int64_t*) = nullptr;
  int (*pingpong)(int64_t, int, double*) = nullptr;
  int (*alltoall)(int64_t, int, double*) = nullptr;
  int (*barrier)() = nullptr;
  void (*abort)(int) = nullptr;
  int (*finalize)() = nullptr;
  const char* (*last_error)() = nullptr;
};

struct EpWorld {
  const EpMpiApi* api = nullptr;
  int rank = 0, size = 0;
  std::string library, built_mpi, runtime_mpi;
};

// The process's MPI world for `ranks` ranks (loaded and initialised on the first call), or throws.
const EpWorld& ep_world(int ranks);
// The world when ep_world() has succeeded before, else null (abort and finalize use it).
const EpWorld* ep_world_if_loaded();
std::vector<std::string> mpi_library_candidates(const Environment& env);

// The expert-parallel transport over the loaded library's MPI_Alltoallv.
class MpiTransport : public ExpertTransport {
 public:
  explicit MpiTransport(const EpWorld& w) : w_(w) {}
  int rank() const override { return w_.rank; }
  int size() const override { return w_.size; }
  void alltoallv(const void* send, const int64_t* send_bytes, void* recv, const int64_t* recv_bytes) override;

 private:
  EpWorld w_;
};

// Link calibration in the same run: ping-pong between ranks 0 and 1 (latency from the smallest
// size, bandwidth from the largest) and an all-to-all sweep. Collective.
struct LinkPoint {
  int64_t bytes = 0;
  double seconds = 0;  // ping-pong: one way (half the round trip); all-to-all: one exchange
};
struct LinkCalibration {
  std::vector<LinkPoint> pingpong, alltoall;
  double latency_s = 0, bandwidth_bytes_s = 0;
};
LinkCalibration calibrate_link(const EpWorld& w);

}  // namespace moecap
