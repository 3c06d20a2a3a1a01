#include "weights/packed_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "error.h"
#include "kernels/quant_panel_layout.h"
#include "runtime/thread_pool.h"
#include "weights/block_quant.h"
#include "weights/numeric.h"

namespace moecap {

static int round_up(int v, int m) { return (v + m - 1) / m * m; }

size_t panel_bytes_for(DType dtype, int K) {
  const size_t nb = size_t((K + kQuantBlock - 1) / kQuantBlock);
  switch (dtype) {
    case DType::F32: return size_t(K) * kPanelWidth * 4;
    case DType::BF16: return size_t(round_up(K, 2)) * kPanelWidth * 2;
    case DType::I8: return nb * quant_block_stride(false);
    case DType::I4: return nb * quant_block_stride(true);
  }
  return 0;
}

static void pack_panel(PackedMatrix& m, int p, const LaneSource& src) {
  const int K = m.K;
  const int nb = m.blocks();
  const int Kq = nb * kQuantBlock;
  uint8_t* dst = m.data.data() + size_t(p) * m.panel_bytes;
  std::memset(dst, 0, m.panel_bytes);
  std::vector<float> lane(static_cast<size_t>(std::max(K, 1)));
  std::vector<int8_t> q(static_cast<size_t>(Kq));
  std::vector<uint16_t> sc(static_cast<size_t>(nb));
  for (int l = 0; l < kPanelWidth; ++l) {
    if (!src(p, l, lane.data())) continue;  // zero lane: memset above
    for (int k = 0; k < K; ++k)
      if (!std::isfinite(lane[k])) throw_range("weight is not finite (panel " + std::to_string(p) + ", lane " +
                                               std::to_string(l) + ", input " + std::to_string(k) + ")");
    switch (m.dtype) {
      case DType::F32: {
        float* d = reinterpret_cast<float*>(dst);
        for (int k = 0; k < K; ++k) d[size_t(k) * kPanelWidth + l] = lane[k];
        break;
      }
      case DType::BF16: {
        uint16_t* d = reinterpret_cast<uint16_t*>(dst);
        for (int k = 0; k < K; ++k) d[size_t(k / 2) * 64 + l * 2 + (k & 1)] = f32_to_bf16(lane[k]);
        break;
      }
      case DType::I8: {
        quantise_block_int8(lane.data(), K, q.data(), sc.data());
        for (int b = 0; b < nb; ++b) {
          uint8_t* blk = quant_block(dst, false, b);
          for (int kk = 0; kk < kQuantBlock; ++kk)
            blk[(kk / 4) * 128 + l * 4 + (kk % 4)] = uint8_t(q[b * kQuantBlock + kk] + 128);
          quant_block_scales(dst, false, b)[l] = sc[b];
        }
        break;
      }
      case DType::I4: {
        quantise_block_int4(lane.data(), K, q.data(), sc.data());
        for (int b = 0; b < nb; ++b) {
          uint8_t* blk = quant_block(dst, true, b);
          for (int kk = 0; kk < kQuantBlock; ++kk) {
            uint8_t nib = uint8_t(q[b * kQuantBlock + kk] + 8);
            uint8_t& byte = blk[(kk / 4) * 64 + (l & 15) * 4 + (kk % 4)];
            byte = l < 16 ? uint8_t((byte & 0xF0) | nib) : uint8_t((byte & 0x0F) | (nib << 4));
          }
          quant_block_scales(dst, true, b)[l] = sc[b];
        }
        break;
      }
    }
  }
}

void pack_matrix(PackedMatrix& m, DType dtype, int K, int panels, const LaneSource& src, ThreadPool* pool) {
  m.dtype = dtype;
  m.K = K;
  m.panels = panels;
  m.panel_bytes = panel_bytes_for(dtype, K);
  m.data.resize(m.bytes());
  if (pool) pool->parallel_for(panels, [&](int p, int) { pack_panel(m, p, src); });
  else
    for (int p = 0; p < panels; ++p) pack_panel(m, p, src);
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
  }
}

}  // namespace moecap
