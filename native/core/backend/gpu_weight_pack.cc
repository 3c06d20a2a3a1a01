#include "backend/gpu_weight_pack.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "weights/block_quant.h"
#include "weights/numeric.h"

namespace moecap_cuda {

namespace {
// Level or code k of a row into its byte (or nibble, in int4's order) of the GPU row.
void put_value(int dt, int k, int K, uint8_t v, uint8_t* values) {
  bool high = false;
  const size_t off = value_offset(dt, 0, k, K, &high);
  if (!is_nibbles(dt)) values[off] = v;
  else values[off] = high ? uint8_t((values[off] & 0x0F) | (v << 4)) : uint8_t((values[off] & 0xF0) | (v & 0x0F));
}
}  // namespace

bool has_stored_codes(int dt) { return dt == kBF16 || dt == kMX4 || dt == kFP8; }

void pack_codes_row(int dt, const uint8_t* codes, const void* code_scales, int K, uint8_t* values, uint8_t* scales) {
  std::memset(values, 0, row_value_bytes(dt, K));  // the K padding: zero values (code 0)
  if (dt == kBF16) {
    std::memcpy(values, codes, size_t(K) * 2);
    return;
  }
  for (int k = 0; k < K; ++k) put_value(dt, k, K, codes[k], values);
  std::memcpy(scales, code_scales, size_t(ceil_div(K, dt == kFP8 ? kFp8QBlock : kQBlock)) * scale_bytes(dt));
}

void pack_row(int dt, const float* v, int K, uint8_t* values, uint8_t* scales) {
  switch (dt) {
    case kF32:
      std::memset(values, 0, row_value_bytes(dt, K));
      std::memcpy(values, v, sizeof(float) * size_t(K));
      return;
    case kBF16: {
      std::memset(values, 0, row_value_bytes(dt, K));
      uint16_t* d = reinterpret_cast<uint16_t*>(values);
      for (int k = 0; k < K; ++k) d[k] = moecap::f32_to_bf16(v[k]);
      return;
    }
    default: break;
  }
  // The block formats: the core's quantisers (weights/block_quant), so the levels, codes and
  // scales are bitwise the CPU's; only the byte layout here is the GPU's.
  if (dt == kMX4 || dt == kFP8) {
    // Codes one a byte over the quantiser's whole blocks, then placed as stored codes are.
    std::vector<uint8_t> c(size_t(moecap::round_up(K, dt == kFP8 ? kFp8QBlock : kQBlock)), 0);
    std::vector<float> s(size_t(row_scales(dt, K)), 0.0f);  // fp32 (fp8), or E8M0 bytes in its first bytes
    if (dt == kMX4) moecap::quantise_mxfp4(v, K, c.data(), reinterpret_cast<uint8_t*>(s.data()));
    else moecap::quantise_fp8(v, K, c.data(), s.data());
    pack_codes_row(dt, c.data(), s.data(), K, values, scales);
    return;
  }
  std::memset(values, 0, row_value_bytes(dt, K));
  const int Kp = padded_k(K);
  std::vector<int8_t> q(static_cast<size_t>(Kp));
  uint16_t* s16 = reinterpret_cast<uint16_t*>(scales);
  if (dt == kI8) moecap::quantise_block_int8(v, K, q.data(), s16);
  else moecap::quantise_block_int4(v, K, q.data(), s16);
  for (int k = 0; k < Kp; ++k) put_value(dt, k, K, dt == kI8 ? uint8_t(q[k]) : uint8_t(q[k] + 8), values);
}

void pack_matrix(int dt, const moecap::WeightSource& src, moecap::Matrix m, int expert, int row0, int rows, int K,
                 uint8_t* dst, int threads) {
  std::memset(dst, 0, matrix_bytes(dt, rows, K));
  const size_t rvb = row_value_bytes(dt, K);
  uint8_t* scales = dst + scales_offset(dt, rows, K);
  const size_t row_scale_bytes = size_t(row_scales(dt, K)) * scale_bytes(dt);
  const bool codes_possible = has_stored_codes(dt);
  // Zero int4 rows must hold nibble 8 (q = 0) everywhere, including the K padding.
  auto work = [&](int r0, int r1) {
    std::vector<float> v(size_t(padded_k(K)), 0.0f);
    // Stored codes: up to K codes one a byte (or K bf16 values), and the row's block scales.
    std::vector<uint8_t> codes(codes_possible ? size_t(moecap::round_up(K, kFp8QBlock)) * 2 : 0, 0);
    std::vector<float> code_scales(codes_possible ? size_t(ceil_div(K, kQBlock)) : 0, 0.0f);
    for (int r = r0; r < r1; ++r) {
      uint8_t* values = dst + size_t(r) * rvb;
      uint8_t* row_sc = row_scale_bytes ? scales + size_t(r) * row_scale_bytes : nullptr;
      if (codes_possible &&
          src.stored_codes(m, expert, row0 + r, K, moecap::DType(dt), codes.data(), code_scales.data())) {
        pack_codes_row(dt, codes.data(), code_scales.data(), K, values, row_sc);
        continue;
      }
      src.row(m, expert, row0 + r, K, v.data());
      pack_row(dt, v.data(), K, values, row_sc);
    }
  };
  threads = std::max(1, std::min(threads, rows / 16 + 1));
  if (threads == 1) return work(0, rows);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back(work, int(int64_t(rows) * i / threads), int(int64_t(rows) * (i + 1) / threads));
  for (auto& t : pool) t.join();
}

// Rows [0, F) of gate then rows [0, F) of up, as one 2F-row matrix.
namespace {
struct StackedGateUp : moecap::WeightSource {
  const moecap::WeightSource* src;
  moecap::Matrix gate, up;
  int F;
  void row(moecap::Matrix, int e, int r, int cols, float* out) const override {
    src->row(r < F ? gate : up, e, r < F ? r : r - F, cols, out);
  }
  bool stored_codes(moecap::Matrix, int e, int r, int cols, moecap::DType dt, uint8_t* codes,
                    void* scales) const override {
    return src->stored_codes(r < F ? gate : up, e, r < F ? r : r - F, cols, dt, codes, scales);
  }
  uint64_t fingerprint() const override { return src->fingerprint(); }
};
}  // namespace

void pack_expert(int dt, const moecap::WeightSource& src, moecap::Matrix gate, moecap::Matrix up, moecap::Matrix down,
                 int expert, int H, int F, uint8_t* dst, int threads) {
  const ExpertLayout l = expert_layout(dt, H, F);
  StackedGateUp s;
  s.src = &src;
  s.gate = gate;
  s.up = up;
  s.F = F;
  pack_matrix(dt, s, gate, expert, 0, 2 * F, H, dst + l.w13, threads);
  pack_matrix(dt, src, down, expert, 0, H, F, dst + l.w2, threads);
}

void pack_routed_experts(int dt, const moecap::WeightSource& src, int E, int H, int F, const uint8_t* held,
                         uint8_t* dst, int threads) {
  const size_t blob = expert_layout(dt, H, F).bytes;
  auto holds = [&](int e) { return !held || held[e]; };
  for (int e = 0; e < E; ++e) {
    uint8_t* out = dst + size_t(e) * blob;
    if (!holds(e)) {
      std::memset(out, 0, blob);
      continue;
    }
    for (int next = e + 1; next < E; ++next)
      if (holds(next)) {
        src.will_read_expert(next);  // read while this one packs
        break;
      }
    pack_expert(dt, src, moecap::Matrix::Gate, moecap::Matrix::Up, moecap::Matrix::Down, e, H, F, out, threads);
  }
  src.done_reading_experts();
}

float unpack_value(int dt, const uint8_t* mat, int rows, int K, int row, int k) {
  bool high = false;
  const size_t off = value_offset(dt, row, k, K, &high);
  const uint8_t* scale = mat + scales_offset(dt, rows, K) + scale_index(dt, row, k, K) * scale_bytes(dt);
  const uint8_t byte = mat[off], nibble = uint8_t(high ? byte >> 4 : byte & 15);
  switch (dt) {
    case kF32: {
      float f;
      std::memcpy(&f, mat + off, 4);
      return f;
    }
    case kBF16: {
      uint16_t h;
      std::memcpy(&h, mat + off, 2);
      return moecap::bf16_to_f32(h);
    }
    case kMX4: return float(moecap::e2m1_twice(nibble)) * moecap::e8m0_half(*scale);
    case kFP8: {
      float s;
      std::memcpy(&s, scale, 4);
      return moecap::e4m3_to_f32(byte) * s;
    }
    default: {
      uint16_t s;
      std::memcpy(&s, scale, 2);
      return float(dt == kI8 ? int(int8_t(byte)) : int(nibble) - 8) * moecap::f16_to_f32(s);
    }
  }
}

}  // namespace moecap_cuda
