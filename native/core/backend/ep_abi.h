/* The C ABI of libmoecap_mpi.so (mpi/ep_mpi.cc): the expert-parallel transport over MPI and its
 * link calibration. The addon dlopens the library only when expert parallelism is asked for
 * (native/core/backend/mpi_loader.cc), so the addon itself never links MPI. Plain C types only.
 * Every call returns 0 on success, else nonzero with moecap_ep_last_error() saying why.
 * Version rule: any change to a signature or meaning bumps MOECAP_EP_ABI_VERSION. */
#ifndef MOECAP_EP_ABI_H
#define MOECAP_EP_ABI_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOECAP_EP_ABI_VERSION 1

#if defined(_WIN32)
#define MOECAP_EP_API __declspec(dllexport)
#else
#define MOECAP_EP_API __attribute__((visibility("default")))
#endif

MOECAP_EP_API int moecap_ep_abi_version(void);
/* The MPI the library was compiled against ("Open MPI 4.1.4", "MPICH 4.0.2"). */
MOECAP_EP_API const char* moecap_ep_built_mpi(void);
/* The MPI library loaded now (MPI_Get_library_version, first line); callable before init. */
MOECAP_EP_API const char* moecap_ep_runtime_mpi(void);
/* MPI_Init_thread(MPI_THREAD_SERIALIZED) once per process; this process's rank and world size. */
MOECAP_EP_API int moecap_ep_init(int* rank, int* size);
/* Collective over MPI_COMM_WORLD: block sizes in bytes per rank, blocks back to back. Sizes are
 * exchanged by the caller first (counts, then payload). */
MOECAP_EP_API int moecap_ep_alltoallv(const void* send, const int64_t* send_bytes, void* recv,
                                      const int64_t* recv_bytes);
/* Ranks 0 and 1 bounce `bytes` bytes `iters` times (after a warm-up); the others wait.
 * *seconds: mean round trip, the same on every rank. */
MOECAP_EP_API int moecap_ep_pingpong(int64_t bytes, int iters, double* seconds);
/* MPI_Alltoall of `bytes` bytes per pair, `iters` times; *seconds: the slowest rank's mean. */
MOECAP_EP_API int moecap_ep_alltoall(int64_t bytes, int iters, double* seconds);
MOECAP_EP_API int moecap_ep_barrier(void);
/* MPI_Abort(MPI_COMM_WORLD, code): mpirun ends every rank. */
MOECAP_EP_API void moecap_ep_abort(int code);
MOECAP_EP_API int moecap_ep_finalize(void);
MOECAP_EP_API const char* moecap_ep_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
