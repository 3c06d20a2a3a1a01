// Where the fp32 master weights of a layer come from: caller-provided arrays, or a seeded
// generator that can recreate any row on demand (so presets of many GB need no JS copy and the
// fp64 reference can re-read the exact master weights the quantised copies were made from).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "weights/dtype.h"

namespace moecap {

// Matrices of one layer, in HF layout (rows = outputs, cols = inputs).
enum class Matrix : int {
  Router = 0,            // [E,H]
  Gate = 1,              // [E][F,H]
  Up = 2,                // [E][F,H]
  Down = 3,              // [E][H,F]
  SharedGate = 4,        // [Fs,H]
  SharedUp = 5,          // [Fs,H]
  SharedDown = 6,        // [H,Fs]
  SharedGateWeight = 7,  // [1,H]
};

struct ExplicitWeights;

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Writes row `row` of matrix `m` for expert `expert` (0 for non-expert matrices): `cols` floats.
  virtual void row(Matrix m, int expert, int row, int cols, float* out) const = 0;
  // How another backend (CUDA) can get the same master weights without RTTI: the seed, or the arrays.
  virtual bool seed(uint64_t* out) const {
    (void)out;
    return false;
  }
  virtual const ExplicitWeights* arrays() const { return nullptr; }
  // The row's stored element codes when the source holds it in `dtype`'s own format, so packing
  // keeps them bitwise: mxfp4 → `cols` E2M1 codes (one a byte) and ceil(cols/32) E8M0 bytes in
  // `scales`; fp8 → `cols` E4M3 bytes and ceil(cols/128) floats; bf16 → `cols` bf16 values (2
  // bytes each, finite), `scales` unused. False when it does not (the packer then quantises row()).
  virtual bool stored_codes(Matrix m, int expert, int row, int cols, DType dtype, uint8_t* codes, void* scales) const {
    (void)m, (void)expert, (void)row, (void)cols, (void)dtype, (void)codes, (void)scales;
    return false;
  }
  // A hint that expert `expert`'s rows are asked for next (packing experts one after another): a
  // source reading files starts reading them now, in the background.
  virtual void will_read_expert(int expert) const { (void)expert; }
  // Packing is done: a source that staged experts' bytes frees them (the layer keeps its source).
  virtual void done_reading_experts() const {}
  // Identifies the weights (an offload file written from other weights is refused).
  virtual uint64_t fingerprint() const = 0;
};

// Counter-based generator: weight (m, expert, row, col) = N(0,1)-like value · 1/sqrt(cols),
// from splitmix64 of (seed, index). The N(0,1)-like value is the sum of four uniforms
// (Irwin–Hall, rescaled to unit variance): cheap enough for multi-GB presets.
class SeededWeights : public WeightSource {
 public:
  explicit SeededWeights(uint64_t seed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  void row(Matrix m, int expert, int row, int cols, float* out) const override;
  bool seed(uint64_t* out) const override {
    *out = seed_;
    return true;
  }
  uint64_t fingerprint() const override;

 private:
  uint64_t seed_;
};

struct ExplicitWeights : public WeightSource {
  int hidden = 0, intermediate = 0, experts = 0, shared_intermediate = 0;
  std::vector<float> router, gate, up, down, shared_gate, shared_up, shared_down, shared_gate_weight;
  void row(Matrix m, int expert, int row, int cols, float* out) const override;
  const ExplicitWeights* arrays() const override { return this; }
  uint64_t fingerprint() const override;  // hash of the expert matrices
};

// The source itself when it has a seed or arrays; otherwise (a checkpoint read row by row) a copy of
// its matrices as fp32 arrays, for a backend that takes only those (CUDA uploads whole matrices);
// without `routed_experts`, the routed experts' gate, up and down are left empty (not to be read).
std::shared_ptr<const WeightSource> seed_or_arrays(std::shared_ptr<const WeightSource> src, int hidden,
                                                   int intermediate, int experts, int shared_intermediate,
                                                   bool shared_gated, bool routed_experts = true);

}  // namespace moecap
