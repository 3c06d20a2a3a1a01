// Finding and naming the optional libraries the addon loads at run time (CUDA backend, MPI
// transport, the NVML counters): where the package root is relative to the addon, the file checks,
// the libraries' file names on this OS, and loading them (dlopen, or LoadLibraryW on Windows).
#pragma once
#include <string>
#include <vector>

namespace moecap {

// True for an existing regular file.
bool regular_file_exists(const std::string& path);

// Where a library built beside the package lands: <root>/<build_dir>/<file> (the addon sits in
// <root>/build/Release or <root>/prebuilds/<platform>/), then the addon's own folder. Empty when the
// addon's path is unknown.
std::vector<std::string> package_library_candidates(const std::vector<std::string>& build_dirs,
                                                    const std::string& file);

// The first line of a dlerror()/version text (they can run to several lines).
std::string first_line(const char* text);

// The libraries' file names on this OS (the defaults the loaders look for).
#if defined(_WIN32)
constexpr const char* kCudaLibraryFile = "moecap_cuda.dll";
constexpr const char* kMpiLibraryFile = "moecap_mpi.dll";
constexpr const char* kCudaDriverFile = "nvcuda.dll";
constexpr const char* kNvmlFile = "nvml.dll";
#else
constexpr const char* kCudaLibraryFile = "libmoecap_cuda.so";
constexpr const char* kMpiLibraryFile = "libmoecap_mpi.so";
constexpr const char* kCudaDriverFile = "libcuda.so.1";
constexpr const char* kNvmlFile = "libnvidia-ml.so.1";
#endif

// Loads a library now (RTLD_NOW); null on failure with *error (first line) set. `global`: its
// symbols serve libraries loaded after it (RTLD_GLOBAL; Windows resolves per module anyway).
void* open_library(const std::string& path, bool global, std::string* error);
void* library_symbol(void* handle, const char* name);
void close_library(void* handle);

}  // namespace moecap
