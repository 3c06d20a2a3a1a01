#include "weights/packed_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "error.h"
#include "kernels/quant_panel_layout.h"
#include "runtime/checked_size.h"
#include "runtime/thread_pool.h"
#include "weights/block_quant.h"
#include "weights/numeric.h"

namespace moecap {

size_t panel_bytes_for(DType dtype, int K) {
  const size_t nb = ceil_div_size(K, kQuantBlock);
  switch (dtype) {
    case DType::F32: return checked_mul(size_t(K), kPanelWidth * 4, "f32 panel");
    case DType::BF16: return checked_mul(round_up_size(K, 2), kPanelWidth * 2, "bf16 panel");
    case DType::I8: return checked_mul(nb, quant_block_stride(false), "int8 panel");
    case DType::I4: return checked_mul(nb, quant_block_stride(true), "int4 panel");
    case DType::MXFP4: return checked_mul((nb + 1) / 2, kMx4PairStride, "mxfp4 panel");
    case DType::FP8: return checked_mul(ceil_div_size(K, kFp8Block), kFp8BlockStride, "fp8 panel");
  }
  return 0;
}

static std::string lane_name(const LaneName& name, int p, int l) {
  return name ? name(p, l) : "panel " + std::to_string(p) + ", lane " + std::to_string(l);
}

// Fp16 block scales cover a limited range of max|w| (block_quant.h): outside it int8/int4 would
// silently hold garbage, so such weights are refused naming the lane and the block.
static void check_quant_range(const float* v, int K, DType dtype, const std::string& lane) {
  const bool int4 = dtype == DType::I4;
  float amax = 0;
  const int b = first_unrepresentable_block(v, K, int4, &amax);
  if (b < 0) return;
  const QuantAmaxRange r = quant_amax_range(int4);
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%s weights out of range at %s, block %d (inputs from %lld): max|w| = %.3g, but %s with fp16 "
                "block scales holds max|w| in [%.3g, %.3g] (scale = max|w|/%s within [2^-17, 65504]: a larger "
                "scale is not finite, a smaller one loses precision); rescale the weights or use f32/bf16",
                dtype_name(dtype), lane.c_str(), b, (long long)b * kQuantBlock, double(amax), dtype_name(dtype),
                double(r.lo), double(r.hi), int4 ? "(7.5..9.5)" : "127");
  throw_range(buf);
}

void put_mxfp4_lane(uint8_t* panel, int b, int l, const uint8_t* codes, uint8_t scale) {
  uint8_t* blk = const_cast<uint8_t*>(mx4_block(panel, b));
  for (int kk = 0; kk < kQuantBlock; ++kk) {
    const uint8_t nib = codes[kk] & 0x0F;
    uint8_t& byte = blk[(kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
    byte = l < 16 ? uint8_t((byte & 0xF0) | nib) : uint8_t((byte & 0x0F) | (nib << 4));
  }
  const_cast<uint8_t*>(mx4_block_scales(panel, b))[l] = scale;
}

void put_fp8_lane(uint8_t* panel, int b, int l, const uint8_t* codes, float scale) {
  uint8_t* blk = const_cast<uint8_t*>(fp8_block(panel, b));
  for (int kk = 0; kk < kFp8Block; ++kk) blk[size_t(kk) * kPanelWidth + l] = codes[kk];
  const_cast<float*>(fp8_block_scales(panel, b))[l] = scale;
}

// A lane from the source's stored codes (bitwise), when it has them: mxfp4/fp8 into the panel
// `dst`; bf16 as its pair words (two little-endian bf16 values side by side, input k low, an odd
// K's pad zero) into `words`, the lane's row of the packer's lane-major scratch.
static LaneCodesResult put_stored_lane(PackedMatrix& m, uint8_t* dst, int p, int l, const LaneCodes& codes,
                                       std::vector<uint8_t>& buf, uint32_t* words) {
  const int K = m.K;
  if (m.dtype == DType::BF16) {
    buf.assign(size_t(K + 1) * 2, 0);  // zero past the source's columns and in an odd K's pad
    const LaneCodesResult r = codes(p, l, buf.data(), nullptr);
    if (r == kCodesFilled) std::memcpy(words, buf.data(), size_t(K + 1) / 2 * 4);
    return r;
  }
  const bool mx = m.dtype == DType::MXFP4;
  const size_t nblk = mx ? ceil_div_size(K, kQuantBlock) : ceil_div_size(K, kFp8Block);
  const size_t ncodes = nblk * (mx ? kQuantBlock : kFp8Block);
  buf.assign(ncodes + nblk * 4, 0);
  uint8_t* sc = buf.data() + ncodes;
  const LaneCodesResult r = codes(p, l, buf.data(), sc);
  if (r != kCodesFilled) return r;
  for (size_t b = 0; b < nblk; ++b) {
    if (mx) put_mxfp4_lane(dst, int(b), l, buf.data() + b * kQuantBlock, sc[b]);
    else {
      float s;
      std::memcpy(&s, sc + 4 * b, 4);
      put_fp8_lane(dst, int(b), l, buf.data() + b * kFp8Block, s);
    }
  }
  return r;
}

// Lane-major words (lane l's word j at l·n + j) into the panel's order (word j of lane l at
// j·32 + l), for the lanes set in `filled` (the others stay as they are: zero). Tiles of 16 words
// keep the 32 lanes' source lines in L1 while the panel is written front to back.
static void store_lane_words(const uint32_t* src, size_t n, uint32_t filled, uint32_t* dst) {
  constexpr size_t kTile = 16;
  for (size_t j0 = 0; j0 < n; j0 += kTile) {
    const size_t j1 = std::min(n, j0 + kTile);
    for (int l = 0; l < kPanelWidth; ++l) {
      if (!(filled >> l & 1u)) continue;
      const uint32_t* s = src + size_t(l) * n;
      for (size_t j = j0; j < j1; ++j) dst[j * kPanelWidth + size_t(l)] = s[j];
    }
  }
}

static void pack_panel(PackedMatrix& m, int p, const LaneSource& src, const LaneName& name, const LaneCodes& stored) {
  const int K = m.K;
  const int nb = m.blocks();
  const size_t Kq = size_t(nb) * kQuantBlock;
  uint8_t* dst = m.data.data() + size_t(p) * m.panel_bytes;
  const bool words = m.dtype == DType::F32 || m.dtype == DType::BF16;
  if (!words) std::memset(dst, 0, m.panel_bytes);                    // f32/bf16: at the end, when a lane is zero
  std::vector<float> lane(static_cast<size_t>(std::max(K, 1)) + 1);  // + the pad of an odd K (bf16)
  // f32/bf16: each lane's words (a value, or a rounded pair) into a lane-major scratch, then the
  // panel written in its own order. Storing a lane straight into the panel touches a cache line
  // per word 32 times over (the panel is larger than L1): it was most of the packing time.
  const size_t lane_words = m.dtype == DType::F32 ? size_t(K) : size_t(K + 1) / 2;
  // Kept per thread: a panel's scratch (128 KiB at K = 2048) sits at malloc's mmap threshold,
  // and mapping it afresh per panel costs page faults and page clearing.
  thread_local std::vector<uint32_t> scratch;
  if (words && scratch.size() < lane_words * kPanelWidth) scratch.resize(lane_words * kPanelWidth);
  uint32_t filled = 0;  // lanes whose words are in the scratch (the others are zero lanes)
  std::vector<int8_t> q(Kq);
  std::vector<uint16_t> sc(static_cast<size_t>(nb));
  std::vector<uint8_t> codes;
  std::vector<float> fsc;
  for (int l = 0; l < kPanelWidth; ++l) {
    // bf16 stored values (finite: the source checked) are the bits the rounding below would give,
    // without the fp32 round trip.
    if (stored && (m.dtype == DType::MXFP4 || m.dtype == DType::FP8 || m.dtype == DType::BF16)) {
      const LaneCodesResult r =
          put_stored_lane(m, dst, p, l, stored, codes, words ? scratch.data() + size_t(l) * lane_words : nullptr);
      if (r == kCodesFilled && words) filled |= 1u << l;
      if (r != kCodesUnavailable) continue;  // stored codes, or a zero lane
    }
    if (!src(p, l, lane.data())) continue;  // zero lane: its bytes are cleared
    // Branch-free over the exponent bits (it vectorises), the search only on a NaN or Inf.
    uint32_t special = 0;
    for (int k = 0; k < K; ++k) special |= uint32_t((f32_bits(lane[k]) & 0x7F800000u) == 0x7F800000u);
    for (int k = 0; special && k < K; ++k)
      if (!std::isfinite(lane[k]))
        throw_range("weight is not finite (" + lane_name(name, p, l) + ", input " + std::to_string(k) + ")");
    if (m.dtype == DType::I8 || m.dtype == DType::I4) check_quant_range(lane.data(), K, m.dtype, lane_name(name, p, l));
    switch (m.dtype) {
      case DType::F32: {
        std::memcpy(scratch.data() + size_t(l) * lane_words, lane.data(), size_t(K) * 4);
        filled |= 1u << l;
        break;
      }
      case DType::BF16: {
        // Inputs k, k+1 of a lane side by side (k even low): rounded in one contiguous pass (the
        // values are finite, checked above: no NaN case, so it vectorises), then one 32-bit store
        // a pair.
        const int pairs = (K + 1) / 2;
        if (K & 1) lane[size_t(K)] = 0.0f;  // odd K: the pad half is 0
        uint32_t* pair = scratch.data() + size_t(l) * lane_words;
        for (int j = 0; j < pairs; ++j) {
          const uint32_t lo = f32_bits(lane[size_t(2 * j)]), hi = f32_bits(lane[size_t(2 * j + 1)]);
          pair[j] = ((lo + 0x7FFFu + ((lo >> 16) & 1u)) >> 16) | ((hi + 0x7FFFu + ((hi >> 16) & 1u)) & 0xFFFF0000u);
        }
        filled |= 1u << l;
        break;
      }
      case DType::I8: {
        quantise_block_int8(lane.data(), K, q.data(), sc.data());
        for (int b = 0; b < nb; ++b) {
          uint8_t* blk = quant_block(dst, false, b);
          for (int kk = 0; kk < kQuantBlock; ++kk)
            blk[(kk / 4) * 128 + l * 4 + (kk % 4)] = uint8_t(q[size_t(b) * kQuantBlock + kk] + 128);
          quant_block_scales(dst, false, b)[l] = sc[b];
        }
        break;
      }
      case DType::I4: {
        quantise_block_int4(lane.data(), K, q.data(), sc.data());
        for (int b = 0; b < nb; ++b) {
          uint8_t* blk = quant_block(dst, true, b);
          for (int kk = 0; kk < kQuantBlock; ++kk) {
            uint8_t nib = uint8_t(q[size_t(b) * kQuantBlock + kk] + 8);
            uint8_t& byte = blk[(kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
            byte = l < 16 ? uint8_t((byte & 0xF0) | nib) : uint8_t((byte & 0x0F) | (nib << 4));
          }
          quant_block_scales(dst, true, b)[l] = sc[b];
        }
        break;
      }
      case DType::MXFP4: {
        codes.resize(Kq + size_t(nb));
        quantise_mxfp4(lane.data(), K, codes.data(), codes.data() + Kq);
        for (int b = 0; b < nb; ++b) put_mxfp4_lane(dst, b, l, codes.data() + size_t(b) * kQuantBlock, codes[Kq + b]);
        break;
      }
      case DType::FP8: {
        const int nb8 = int(ceil_div_size(K, kFp8Block));
        codes.resize(size_t(nb8) * kFp8Block);
        fsc.resize(size_t(nb8));
        quantise_fp8(lane.data(), K, codes.data(), fsc.data());
        for (int b = 0; b < nb8; ++b) put_fp8_lane(dst, b, l, codes.data() + size_t(b) * kFp8Block, fsc[b]);
        break;
      }
    }
  }
  if (!words) return;
  if (filled != ~0u) std::memset(dst, 0, m.panel_bytes);
  store_lane_words(scratch.data(), lane_words, filled, reinterpret_cast<uint32_t*>(dst));
}

void pack_matrix(PackedMatrix& m, DType dtype, int K, int panels, const LaneSource& src, ThreadPool* pool,
                 const LaneName& name, const LaneCodes& codes) {
  m.dtype = dtype;
  m.K = K;
  m.panels = panels;
  m.panel_bytes = panel_bytes_for(dtype, K);
  m.data.resize(checked_mul(size_t(panels), m.panel_bytes, "packed matrix"));
  if (pool) pool->parallel_for(panels, [&](int p, int) { pack_panel(m, p, src, name, codes); });
  else
    for (int p = 0; p < panels; ++p) pack_panel(m, p, src, name, codes);
}

void unpack_lane(const PackedMatrix& m, int p, int l, float* out) {
  const uint8_t* src = m.panel(p);
  const int K = m.K;
  switch (m.dtype) {
    case DType::F32:
      for (int k = 0; k < K; ++k) out[k] = reinterpret_cast<const float*>(src)[size_t(k) * kPanelWidth + l];
      break;
    case DType::BF16:
      for (int k = 0; k < K; ++k)
        out[k] = bf16_to_f32(reinterpret_cast<const uint16_t*>(src)[size_t(k / 2) * 64 + l * 2 + (k & 1)]);
      break;
    case DType::I8: {
      for (int k = 0; k < K; ++k) {
        int b = k / kQuantBlock, kk = k % kQuantBlock;
        int q = int(quant_block(src, false, b)[(kk / 4) * 128 + l * 4 + (kk % 4)]) - 128;
        out[k] = float(q) * f16_to_f32(quant_block_scales(src, false, b)[l]);
      }
      break;
    }
    case DType::I4: {
      for (int k = 0; k < K; ++k) {
        int b = k / kQuantBlock, kk = k % kQuantBlock;
        uint8_t byte = quant_block(src, true, b)[(kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
        int q = int(l < 16 ? (byte & 0x0F) : (byte >> 4)) - 8;
        out[k] = float(q) * f16_to_f32(quant_block_scales(src, true, b)[l]);
      }
      break;
    }
    case DType::MXFP4:
      for (int k = 0; k < K; ++k) {
        const uint8_t c = mxfp4_code(src, l, k);
        out[k] = float(e2m1_twice(c)) * e8m0_half(mx4_block_scales(src, k / kQuantBlock)[l]);
      }
      break;
    case DType::FP8:
      for (int k = 0; k < K; ++k) out[k] = e4m3_to_f32(fp8_code(src, l, k)) * fp8_block_scales(src, k / kFp8Block)[l];
      break;
  }
}

uint8_t mxfp4_code(const uint8_t* panel, int l, int k) {
  const int kk = k % kQuantBlock;
  const uint8_t byte = mx4_block(panel, k / kQuantBlock)[(kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
  return l < 16 ? (byte & 0x0F) : (byte >> 4);
}

uint8_t fp8_code(const uint8_t* panel, int l, int k) {
  return fp8_block(panel, k / kFp8Block)[size_t(k % kFp8Block) * kPanelWidth + l];
}

}  // namespace moecap
