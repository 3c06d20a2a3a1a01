// Weights prepacked in the order the kernels stream them: "panels" of 32 output columns.
// One layout serves decode (stream each panel once, FMA against a broadcast activation) and
// prefill (the same panel is the B operand of a register-tiled GEMM micro-kernel).
//
// Panel formats (K = input length; lanes = the 32 outputs of the panel):
//   f32  : float  [K][32]
//   bf16 : uint16 [ceil(K/2)][32][2]       k-pairs interleaved for vdpbf16ps; odd K padded with 0
//   int8 : per block of 32 k: uint8 [8][32][4] (q + 128, k-quads interleaved for vpdpbusd), then
//          the block's 32 fp16 scales (1088 bytes a block). Symmetric: w = q · scale, q ∈ [-127, 127].
//   int4 : per block of 32 k: for each k-quad j (8 of them) 64 bytes: byte 4·l+i holds
//          (q+8) of lane l, k=4j+i in its low nibble and (q+8) of lane l+16 in its high nibble;
//          then the block's 32 fp16 scales (576 bytes a block). w = q · scale, q ∈ [-8, 7], the
//          scale signed and chosen per block for the least squared error (see quantise_block_int4).
//   mxfp4: the int4 nibble order holding E2M1 codes, one E8M0 scale byte per lane and block of
//          32, blocks in pairs with their scales after both (kernels/quant_panel_layout.h).
//   fp8  : per block of 128 k: uint8 E4M3 [128][32], then the block's 32 fp32 scales.
//   Each block's scales follow its values so that a panel streams as one sequence
//   (kernels/quant_panel_layout.h).
//   K is padded with zero weights up to a multiple of 32 for int8/int4.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "weights/aligned_buffer.h"
#include "weights/dtype.h"
#include "kernels/linear_job.h"

namespace moecap {

class ThreadPool;

constexpr int kPanelWidth = 32;
constexpr int kQuantBlock = 32;

struct PackedMatrix {
  DType dtype = DType::F32;
  int K = 0;  // logical input length (activations hold exactly K values)
  int panels = 0;
  size_t panel_bytes = 0;
  AlignedBuffer data;

  const uint8_t* panel(int p) const { return data.data() + size_t(p) * panel_bytes; }
  size_t bytes() const { return size_t(panels) * panel_bytes; }
  int blocks() const { return int((size_t(K) + kQuantBlock - 1) / kQuantBlock); }
};

size_t panel_bytes_for(DType dtype, int K);

// Fills lane `lane` of panel `panel` (K floats) and returns true, or returns false for a
// zero-padded lane.
using LaneSource = std::function<bool(int panel, int lane, float* out)>;

// Names lane `lane` of panel `panel` in errors (e.g. "expert 3, gate row 5"); without one,
// errors say "panel p, lane l".
using LaneName = std::function<std::string(int panel, int lane)>;

// mxfp4/fp8/bf16 only: fills lane `lane` of panel `panel` with the source's stored codes and
// scales (WeightSource::stored_codes layout: K codes one a byte, or for bf16 K 2-byte values, zero
// past the source's columns; the block scales) → kCodesFilled; kCodesAbsent for a zero-padded
// lane; kCodesUnavailable when the source does not hold them, and the packer quantises the
// LaneSource's floats instead.
enum LaneCodesResult { kCodesUnavailable = 0, kCodesFilled = 1, kCodesAbsent = 2 };
using LaneCodes = std::function<LaneCodesResult(int panel, int lane, uint8_t* codes, void* scales)>;

// Packs `panels` panels; runs over the pool when one is given. Throws a RangeError naming the
// lane for a non-finite weight, and for int8/int4 for a block whose max|w| the fp16 scales
// cannot hold (block_quant.h).
void pack_matrix(PackedMatrix& m, DType dtype, int K, int panels, const LaneSource& src, ThreadPool* pool,
                 const LaneName& name = nullptr, const LaneCodes& codes = nullptr);

// A kernel job over all of `m`'s panels (kernels never see PackedMatrix itself).
inline LinearJob linear_job(const PackedMatrix& m) {
  LinearJob j;
  j.panels = m.data.data();
  j.panel_bytes = m.panel_bytes;
  j.K = m.K;
  j.p0 = 0;
  j.p1 = m.panels;
  return j;
}

// Inverse of the packing (dequantised), for tests and for the reference path: lane values of
// one panel, K floats.
void unpack_lane(const PackedMatrix& m, int panel, int lane, float* out);

// One lane's block of stored codes and its scale, written in place (the packer and the exact
// checkpoint path share these); and the stored code of lane l, input k, for checks.
void put_mxfp4_lane(uint8_t* panel, int block, int lane, const uint8_t* codes32, uint8_t e8m0);
void put_fp8_lane(uint8_t* panel, int block, int lane, const uint8_t* codes128, float scale);
uint8_t mxfp4_code(const uint8_t* panel, int lane, int k);
uint8_t fp8_code(const uint8_t* panel, int lane, int k);

}  // namespace moecap
