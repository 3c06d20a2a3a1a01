// int8, int4 (block 32, fp16 scales) and mxfp4 (block 32, E8M0 scales) weights × int8-quantised
// activation rows on AVX2 (no VNNI): vpmaddubsw (u8 × s8 → s16 pair sums) then vpmaddwd by 1
// (→ s32). The integer block dot Σ q_w · q_x is exact, with no 16-bit pair sum able to saturate:
//   int8: weights stored u8 = q + 128 become s8 q by xor 0x80 (|q| ≤ 127); the unsigned operand
//         is |x_q| and the signed one q_w · sign(x_q) (vpsignb), so a pair sum is at most
//         2·127·127 = 32258 < 32767; vpmaddwd every k-quad.
//   int4: the nibble u = q + 8 ∈ [0, 15] is the unsigned operand against s8 x_q directly; a pair
//         sum is at most 2·15·127 = 3810, so the eight k-quads of a block add in s16 (≤ 30480)
//         and vpmaddwd runs once per block; then dot = Σ u·x_q − 8·Σx_q (the row's block sum).
//   mxfp4: the int4 tile with u = 2·E2M1 value + 12 ∈ [0, 24] by a vpshufb table (the offset makes
//         it unsigned, so the dot stays exact) and vpmaddwd every four k-quads (4·2·24·128 =
//         24576); dot = Σ u·x_q − 12·Σx_q; scale_w = 2^(e−128) built in the exponent bits.
// Then, per block in block order, the portable kernel's fp32 arithmetic exactly (mul, mul, add;
// this TU is built with -ffp-contract=off so they are not fused):
//   acc += float(dot) · (scale_w · scale_x)
// so every ISA-independent quantity matches generic/linear_generic.cc bit for bit, and each
// element's operations are the same whatever the tile shape (a row alone equals it in a batch).
// Tiles (run_tiles, linear_avx2.h): 2 rows × one panel, or one row × Nibble::kDecodePanels
// panels (int8: 2) for decode (32 outputs = 4 ymm per row and panel). mxfp4's decode tiles also
// prefetch each panel stream 4 KB ahead: measured at OLMoE T = 1 on a Zen 3 (AVX2 only), that
// took its pass from ~1.7 to ~1.1 ms, where the same for int8/int4 made theirs slower. Where
// prefetcht1 skips L1 (Intel, AMD from Zen 4) every tile that streams its panels (tile_fetches,
// linear_avx2.h) also fetches each stream 2 KB (int8, int4) and 8 KB ahead.
#include <immintrin.h>

#include "kernels/quant_panel_layout.h"
#include "kernels/quant_row_layout.h"
#include "kernels/avx2/linear_avx2.h"

namespace moecap {
namespace avx2 {
namespace {

static inline __m256i broadcast_quad(const int8_t* q) {
  int v;
  MOECAP_MEMCPY(&v, q, 4);
  return _mm256_set1_epi32(v);
}

// acc[v] += float(dot[v]) · (sw[v] · sx), as the portable kernel rounds it.
static inline void scale_block(__m256 acc[4], const __m256i dot[4], const __m256 sw[4], float scale_x) {
  const __m256 sx = _mm256_set1_ps(scale_x);
  for (int v = 0; v < 4; ++v)
    acc[v] = _mm256_add_ps(acc[v], _mm256_mul_ps(_mm256_cvtepi32_ps(dot[v]), _mm256_mul_ps(sw[v], sx)));
}

static inline void load_scales(const uint16_t* s, __m256 sw[4]) {
  for (int v = 0; v < 4; ++v) sw[v] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 8 * v)));
}

template <int MR, int NP>
struct TileInt8 {
  static constexpr int kBlockIters = 32;  // 32-k blocks per K-block: 34 KB of panel
  static int iterations(int K) { return (K + 31) / 32; }
  static void run(const LinearJob& job, int r0, int p, int ps, int b0, int b1, float* part) {
    const int nb = iterations(job.K);
    const uint8_t* P[NP];
    for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
    QuantRowPtrs x[MR];
    for (int r = 0; r < MR; ++r) x[r] = quant_row_ptrs(job.rows[r0 + r], nb);
    const __m256i flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
    const bool fetch = tile_fetches(b0, b1, nb);  // linear_avx2.h
    __m256 acc[MR][NP][4];
    begin_tile(b0, part, acc);
    for (int b = b0; b < b1; ++b) {
      __m256i dot[MR][NP][4];
      for (int r = 0; r < MR; ++r)
        for (int q = 0; q < NP; ++q)
          for (int v = 0; v < 4; ++v) dot[r][q][v] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        __m256i xs[MR], xa[MR];
        for (int r = 0; r < MR; ++r) {
          xs[r] = broadcast_quad(x[r].q + b * 32 + j * 4);
          xa[r] = _mm256_abs_epi8(xs[r]);
        }
#pragma GCC unroll 4
        for (int q = 0; q < NP; ++q) {
          const uint8_t* blk = quant_block(P[q], false, b);
          if (fetch) prefetch_k_step(blk + j * 128);
          for (int v = 0; v < 4; ++v) {
            const __m256i w =
                _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk + j * 128 + v * 32)), flip);
            for (int r = 0; r < MR; ++r) {
              const __m256i s16 = _mm256_maddubs_epi16(xa[r], _mm256_sign_epi8(w, xs[r]));
              dot[r][q][v] = _mm256_add_epi32(dot[r][q][v], _mm256_madd_epi16(s16, ones));
            }
          }
        }
      }
      for (int q = 0; q < NP; ++q) {
        __m256 sw[4];
        load_scales(quant_block_scales(P[q], false, b), sw);
        for (int r = 0; r < MR; ++r) scale_block(acc[r][q], dot[r][q], sw, x[r].scale[b]);
      }
    }
    end_tile(job, r0, p, ps, b1 == nb, part, acc);
  }
};

// The nibble formats: int4 (u = q + 8) and mxfp4 (u = 2·E2M1 value + 12 ∈ [0, 24] looked up by
// vpshufb from the code, numeric.h e2m1_twice), both unsigned operands against s8 x_q.
template <QuantFormat F>
struct Nibble {
  static constexpr bool MX = F == QuantFormat::Mx4;
  static constexpr int kOffset = MX ? 12 : 8;
  // k-quads whose s16 pair sums add before vpmaddwd: 8·2·15·127 = 30480 (int4), 4·2·24·128 =
  // 24576 (mxfp4; eight would overflow s16).
  static constexpr int kQuadsPerWiden = MX ? 4 : 8;
  // Decode tiles (one row): panels at once. Every tile: how far ahead in each panel stream to
  // prefetch of its own (bytes; 0: none, beside tile_fetches' stream fetch where that applies).
  // Chosen by measurement at T = 1 (see the file header).
  static constexpr int kDecodePanels = MX ? 3 : 2;
  static constexpr int kPrefetchAhead = MX ? 4096 : 0;
  static const uint8_t* block(const uint8_t* P, int b) { return MX ? mx4_block(P, b) : quant_block(P, true, b); }
  static void scales(const uint8_t* P, int b, __m256 sw[4]) {
    if (!MX) return load_scales(quant_block_scales(P, true, b), sw);
    // E8M0 e → 2^(e−128) (numeric.h e8m0_half) in the exponent bits: (e−1) << 23 for e ≥ 2,
    // the subnormals 0x200000 << e for e = 0, 1.
    const uint8_t* S = mx4_block_scales(P, b);
    const __m256i one = _mm256_set1_epi32(1), sub = _mm256_set1_epi32(0x200000);
    for (int v = 0; v < 4; ++v) {
      const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(S + 8 * v)));
      const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, one), 23);
      const __m256i tiny = _mm256_sllv_epi32(sub, e);
      sw[v] = _mm256_castsi256_ps(_mm256_blendv_epi8(tiny, normal, _mm256_cmpgt_epi32(e, one)));
    }
  }
  // The table per 128-bit lane: bytes 12 13 14 15 16 18 20 24 | 12 11 10 9 8 6 4 0.
  static __m256i lookup(__m256i u) {
    if (!MX) return u;
    const __m256i lut = _mm256_set_epi32(0x00040608, 0x090A0B0C, 0x18141210, 0x0F0E0D0C, 0x00040608, 0x090A0B0C,
                                         0x18141210, 0x0F0E0D0C);
    return _mm256_shuffle_epi8(lut, u);
  }
};

template <QuantFormat F>
struct TileNibble {
  template <int MR, int NP>
  struct Tile {
    static constexpr int kBlockIters = 64;  // 32-k blocks per K-block: ~35 KB of panel
    static int iterations(int K) { return (K + 31) / 32; }
    static void run(const LinearJob& job, int r0, int p, int ps, int b0, int b1, float* part) {
      using N = Nibble<F>;
      const int nb = iterations(job.K);
      const uint8_t* P[NP];
      for (int q = 0; q < NP; ++q) P[q] = job_panel(job, p + q * ps);
      QuantRowPtrs x[MR];
      for (int r = 0; r < MR; ++r) x[r] = quant_row_ptrs(job.rows[r0 + r], nb);
      const __m256i nib = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
      const bool fetch = tile_fetches(b0, b1, nb);  // linear_avx2.h
      __m256 acc[MR][NP][4];
      begin_tile(b0, part, acc);
      for (int b = b0; b < b1; ++b) {
        __m256i d16[MR][NP][4];  // s16 pair sums of Σ u·x_q over up to kQuadsPerWiden k-quads
        __m256i dot[MR][NP][4];  // s32 Σ u·x_q over the block
        for (int r = 0; r < MR; ++r)
          for (int q = 0; q < NP; ++q)
            for (int v = 0; v < 4; ++v) d16[r][q][v] = dot[r][q][v] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          for (int q = 0; q < NP; ++q) {
            const uint8_t* line = N::block(P[q], b) + 64 * j;  // this k-quad's 64 bytes
            if constexpr (N::kPrefetchAhead > 0) {
              prefetch_ahead(line, N::kPrefetchAhead);
              if (fetch) prefetch_ahead_l2(line, kStreamFar);
            } else if (fetch) {
              prefetch_stream(line);
            }
          }
          __m256i xs[MR];
          for (int r = 0; r < MR; ++r) xs[r] = broadcast_quad(x[r].q + b * 32 + j * 4);
#pragma GCC unroll 4
          for (int q = 0; q < NP; ++q) {
            // 64 bytes per k-quad: bytes 0..31 hold lanes 0..7 (low nibbles) and 16..23 (high),
            // bytes 32..63 lanes 8..15 and 24..31; u ordered as the accumulators (lanes 8v..8v+7).
            const uint8_t* blk = N::block(P[q], b);
            const __m256i v0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + j * 64));
            const __m256i v1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + j * 64 + 32));
            __m256i u[4];
            u[0] = N::lookup(_mm256_and_si256(v0, nib));
            u[1] = N::lookup(_mm256_and_si256(v1, nib));
            u[2] = N::lookup(_mm256_and_si256(_mm256_srli_epi16(v0, 4), nib));
            u[3] = N::lookup(_mm256_and_si256(_mm256_srli_epi16(v1, 4), nib));
            for (int r = 0; r < MR; ++r)
              for (int v = 0; v < 4; ++v)
                d16[r][q][v] = _mm256_add_epi16(d16[r][q][v], _mm256_maddubs_epi16(u[v], xs[r]));
          }
          if ((j + 1) % N::kQuadsPerWiden == 0) {
            for (int r = 0; r < MR; ++r)
              for (int q = 0; q < NP; ++q)
                for (int v = 0; v < 4; ++v) {
                  dot[r][q][v] = _mm256_add_epi32(dot[r][q][v], _mm256_madd_epi16(d16[r][q][v], ones));
                  d16[r][q][v] = _mm256_setzero_si256();
                }
          }
        }
        for (int q = 0; q < NP; ++q) {
          __m256 sw[4];
          N::scales(P[q], b, sw);
          for (int r = 0; r < MR; ++r) {
            const __m256i off = _mm256_set1_epi32(N::kOffset * x[r].sum[b]);
            for (int v = 0; v < 4; ++v) dot[r][q][v] = _mm256_sub_epi32(dot[r][q][v], off);
            scale_block(acc[r][q], dot[r][q], sw, x[r].scale[b]);
          }
        }
      }
      end_tile(job, r0, p, ps, b1 == nb, part, acc);
    }
  };
};

}  // namespace

void linear_int8(const LinearJob& job) { run_tiles<TileInt8, 2, 2>(job); }
void linear_int4(const LinearJob& job) {
  run_tiles<TileNibble<QuantFormat::Int4>::Tile, 2, Nibble<QuantFormat::Int4>::kDecodePanels>(job);
}
void linear_mxfp4(const LinearJob& job) {
  run_tiles<TileNibble<QuantFormat::Mx4>::Tile, 2, Nibble<QuantFormat::Mx4>::kDecodePanels>(job);
}

}  // namespace avx2
}  // namespace moecap
