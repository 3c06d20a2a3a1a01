#include "runtime/environment.h"

#include <cstdlib>

#include "error.h"
#include "kernels/kernel_table.h"

namespace moecap {

static std::string var(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

Environment read_environment() {
  Environment e;
  e.isa = var("MOECAP_ISA");
  e.backend = var("MOECAP_BACKEND");
  e.pin_threads = var("MOECAP_PIN") != "0";
  e.huge_pages = std::getenv("MOECAP_NO_HUGEPAGES") == nullptr;
  e.cuda_library = var("MOECAP_CUDA_LIBRARY");
  e.cuda_driver = var("MOECAP_CUDA_DRIVER");
  if (e.cuda_driver.empty()) e.cuda_driver = "libcuda.so.1";
  e.tmpdir = var("TMPDIR");
  if (e.tmpdir.empty()) e.tmpdir = "/tmp";
  e.mpi_library = var("MOECAP_MPI_LIBRARY");
  std::string size = var("OMPI_COMM_WORLD_SIZE");
  if (size.empty()) size = var("PMI_SIZE");
  e.launcher_size = size.empty() ? 0 : std::atoi(size.c_str());
  e.open_mpi_launcher = !var("OMPI_COMM_WORLD_SIZE").empty() || !var("PMIX_RANK").empty();
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
