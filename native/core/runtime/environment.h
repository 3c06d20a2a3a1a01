// Every environment variable moecap reads, read in one place. read_environment() takes a snapshot
// of all of them; callers take one at each entry point (creating a layer or model, choosing a
// backend, starting a thread pool), so a process may change them between calls.
//
//   variable              values                          effect
//   MOECAP_ISA            auto | avx512 | avx2 | neon |   kernel set when a layer's `isa` option is not
//                         generic                         given; an unknown name or one this CPU cannot
//                                                         run is an error naming the variable
//   MOECAP_BACKEND        cpu | cuda | auto               overrides a layer's `backend` option and
//                                                         backendInfo()'s argument; other values: error
//   MOECAP_PIN            0 | anything else               0: never pin compute threads to CPUs
//   MOECAP_NO_HUGEPAGES   set (even empty) | unset        set: no transparent huge pages for large buffers
//                                                         (still read by weights/aligned_buffer.h itself)
//   MOECAP_CUDA_LIBRARY   a path                          the exact libmoecap_cuda.so to load (test hook)
//   MOECAP_CUDA_DRIVER    a path or soname                the driver library (default libcuda.so.1; test hook)
//   MOECAP_MPI_LIBRARY    a path                          the exact libmoecap_mpi.so to load (test hook)
//   OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK             set by mpirun: expert parallelism checks it was
//                                                         launched by one before initialising MPI
//   OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID           a rank's index on its node (Open MPI, MPICH): the
//                                                         GPU of an expert-parallel rank on the CUDA backend
//   TMPDIR                a directory                     where scratch expert files go (default /tmp)
// Otherwise an empty value counts as unset.
#pragma once
#include <string>

namespace moecap {

struct Environment {
  std::string isa;                 // MOECAP_ISA as set ("" = unset); checked by env_isa()
  std::string backend;             // MOECAP_BACKEND as set ("" = unset); checked by env_backend()
  bool pin_threads = true;         // MOECAP_PIN != "0"
  bool huge_pages = true;          // MOECAP_NO_HUGEPAGES unset
  std::string cuda_library;        // MOECAP_CUDA_LIBRARY ("" = search the default places)
  std::string cuda_driver;         // MOECAP_CUDA_DRIVER, default "libcuda.so.1"
  std::string tmpdir;              // TMPDIR, default "/tmp"
  std::string mpi_library;         // MOECAP_MPI_LIBRARY ("" = search the default places)
  int launcher_size = 0;           // ranks mpirun started (OMPI_COMM_WORLD_SIZE or PMI_SIZE), 0 = none
  bool launched_by_mpi = false;    // any of OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK set
  bool open_mpi_launcher = false;  // OMPI_COMM_WORLD_SIZE or PMIX_RANK set (Open MPI's mpirun)
  int local_rank = -1;             // OMPI_COMM_WORLD_LOCAL_RANK or MPI_LOCALRANKID, -1 = unset
};

Environment read_environment();

// The ISA a layer runs: `option` when given (non-empty), else MOECAP_ISA, else "auto". Throws a
// RangeError (ERR_INVALID_OPTION) naming `isa` or MOECAP_ISA for an unknown name or one this CPU
// cannot run (kernels/kernel_table.h: check_isa_runs()).
std::string env_isa(const Environment& env, const std::string& option);
// MOECAP_BACKEND: "" when unset, else "cpu" | "cuda" | "auto"; throws (ERR_INVALID_OPTION) naming
// the variable for any other value.
std::string env_backend(const Environment& env);

}  // namespace moecap
