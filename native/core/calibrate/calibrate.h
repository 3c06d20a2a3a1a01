// Measures this machine's ceilings with all threads, for the ratios the bench and the CAP runner
// print: read bandwidth of a large buffer (larger than any cache), fp32 FMA peak, bf16 and int8
// dot-product peaks, each timed `repeats` times (median, min, max). Uses the loops of the ISA the
// kernels would use (kernels/peak_loops.h).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace moecap {

struct CalibrateOptions {
  size_t read_bytes = size_t(1) << 30;  // buffer read per repeat
  int repeats = 7;
  int threads = 0;                // 0: all CPUs this process may use
  std::string isa;                // "", "auto" or a kernel set this CPU runs (kIsaNames)
  double compute_seconds = 0.05;  // target duration of one repeat of a compute loop
  bool compute = true;            // false: read bandwidth only (no copy, no compute loops)
};

struct Measured {
  bool available = false;  // false: no such unit at this ISA
  double median = 0, min = 0, max = 0;
  std::vector<double> samples;  // every window's figure, in the order measured
};

struct CalibrateResult {
  Measured read_bandwidth;  // bytes / s
  Measured copy_bandwidth;  // (bytes read + bytes written) / s
  Measured fp32_flops;      // FLOP / s (multiply-add = 2)
  Measured bf16_flops;      // FLOP / s
  Measured int8_ops;        // OP / s (multiply-add = 2)
  int threads = 0;
  std::string isa;
  size_t read_bytes = 0;
  int repeats = 0;
};

CalibrateResult calibrate(const CalibrateOptions& options);
Measured summarise_samples(std::vector<double> samples);  // median, min, max, and the samples

}  // namespace moecap
