// AVX2 fp32 panel GEMM: register tiles of up to 6 rows x 16 columns (12 accumulators + 2 weight registers
// + 1 broadcast = 15 of the 16 ymm registers), so each weight vector loaded serves 6 rows.
//
// The fused a16 kernels (gemm_a16w8_chunk, gemm_a16w4_chunk) widen or dequantize the packed weights inside
// the first row tile, which feeds its FMAs from registers and writes the fp32 tile for the other row tiles
// on the way: the widening (vpmovsxbd / vcvtdq2ps, the store port) overlaps the FMAs instead of running as
// a pass of its own, and with a single row tile (m <= 6) the fp32 tile is never written at all.
#include <immintrin.h>

#include <algorithm>

#include "cpu/kernels/avx2/avx2.h"

namespace lowbit::cpu::avx2 {
namespace {

template <int R>
void tile(const float* a, int64_t lda, const float* b, int64_t kc, float* c, bool accumulate) {
  __m256 acc[R][2];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    acc[r][0] = accumulate ? _mm256_loadu_ps(c + r * kPanel) : _mm256_setzero_ps();
    acc[r][1] = accumulate ? _mm256_loadu_ps(c + r * kPanel + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kPanel), b1 = _mm256_loadu_ps(b + k * kPanel + 8);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * lda + k);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + r * kPanel, acc[r][0]);
    _mm256_storeu_ps(c + r * kPanel + 8, acc[r][1]);
  }
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, bool);
constexpr TileFn kTiles[7] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

// Rows of the next tile when `left` rows remain for `tiles` tiles: spread evenly (8 = 4 + 4, not 6 + 2: a
// 2-row tile waits on the FMA latency and loads its weight vectors for only 4 FMAs).
inline int64_t tile_rows(int64_t left, int64_t tiles) { return left / tiles + (left % tiles != 0); }

// Rows [first, m) from the fp32 tile b, in as few tiles of at most 6 rows as possible.
void rest_tiles(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t first, int64_t m,
                bool accumulate) {
  const int64_t tiles = (m - first + 5) / 6;
  for (int64_t t = 0, i = first; t < tiles; ++t) {
    const int64_t r = tile_rows(m - i, tiles - t);
    kTiles[r](a + i * lda, lda, b, kc, c + i * kPanel, accumulate);
    i += r;
  }
}

// The first row tile of a fused kernel. Src::kStep k per step; src.get(k, w) fills w[2 * s + h] with the
// weights of k + s, columns 8h..8h+7. With Store, the weights also go to tile[kc][16].
template <int R, bool Store, typename Src>
void fused_tile(const Src& src, const float* a, int64_t lda, int64_t kc, float* c, bool accumulate,
                float* tile_out) {
  constexpr int S = Src::kStep;
  __m256 acc[R][2];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    acc[r][0] = accumulate ? _mm256_loadu_ps(c + r * kPanel) : _mm256_setzero_ps();
    acc[r][1] = accumulate ? _mm256_loadu_ps(c + r * kPanel + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; k += S) {
    __m256 w[2 * S];
    src.get(k, w);
    #pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
      if (Store) {
        _mm256_storeu_ps(tile_out + (k + s) * kPanel, w[2 * s]);
        _mm256_storeu_ps(tile_out + (k + s) * kPanel + 8, w[2 * s + 1]);
      }
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 x = _mm256_broadcast_ss(a + r * lda + k + s);
        acc[r][0] = _mm256_fmadd_ps(x, w[2 * s], acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(x, w[2 * s + 1], acc[r][1]);
      }
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + r * kPanel, acc[r][0]);
    _mm256_storeu_ps(c + r * kPanel + 8, acc[r][1]);
  }
}

// First tile of at most Cap rows, fused with the weight source; the other rows from the tile it writes.
template <int Cap, typename Src>
void fused_chunk(const Src& src, const float* a, int64_t lda, int64_t kc, float* c, int64_t m, bool accumulate,
                 float* tile_out) {
  const int64_t r0 = std::min<int64_t>(Cap, tile_rows(m, (m + 5) / 6));
  const bool more = r0 < m;
  auto first = [&](auto rows) {
    constexpr int R = decltype(rows)::value;
    if (more) fused_tile<R, true>(src, a, lda, kc, c, accumulate, tile_out);
    else fused_tile<R, false>(src, a, lda, kc, c, accumulate, tile_out);
  };
  switch (r0) {
    case 1: first(std::integral_constant<int, 1>{}); break;
    case 2: first(std::integral_constant<int, 2>{}); break;
    case 3: first(std::integral_constant<int, 3>{}); break;
    case 4: first(std::integral_constant<int, 4>{}); break;
    case 5: if constexpr (Cap >= 5) first(std::integral_constant<int, 5>{}); break;
    default: if constexpr (Cap >= 6) first(std::integral_constant<int, 6>{}); break;
  }
  if (more) rest_tiles(a, lda, tile_out, kc, c, r0, m, accumulate);
}

// int8 weights of one k widened to fp32, exact and unscaled
struct WidenS8 {
  static constexpr int kStep = 1;
  const uint8_t* w;  // k = 0 of the chunk
  void get(int64_t k, __m256* out) const {
    _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanel) + 1024, _MM_HINT_T0);
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * kPanel));
    out[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
    out[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
  }
};

// int4 nibbles of one k pair widened to fp32, exact (no scale, no zero point); the chunk must not cross a
// group (the caller splits it at group boundaries)
struct WidenS4 {
  static constexpr int kStep = 2;
  const uint8_t* q;  // the byte of k = 0, 1 of the chunk
  void get(int64_t k, __m256* out) const {
    _mm_prefetch(reinterpret_cast<const char*>(q + k / 2 * kPanel) + 1024, _MM_HINT_T0);
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k / 2 * kPanel));
    const __m128i low4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
    const __m256 a0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
    const __m256 a1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
    const __m256 b0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
    const __m256 b1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
    out[0] = a0, out[1] = a1, out[2] = b0, out[3] = b1;
  }
};

}  // namespace

void gemm_f32_panel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m,
                    bool accumulate) {
  rest_tiles(a, lda, b, kc, c, 0, m, accumulate);
}

void gemm_a16w8_chunk(const uint8_t* panel, int64_t k0, int64_t kc, const float* a, int64_t lda, float* c,
                      int64_t m, bool accumulate, float* tile_out) {
  fused_chunk<6>(WidenS8{panel + kPanel * 4 + k0 * kPanel}, a, lda, kc, c, m, accumulate, tile_out);
}

void gemm_a16w4_chunk(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, const float* a,
                      int64_t lda, const float* xsum, int64_t ldxs, float* g, float* c, int64_t m, float* tile_out) {
  const uint8_t* gp = panel + k0 / group * a16w4_group_bytes(group, offsets);
  // 4 rows at most in the fused tile: the 4 widened vectors of a k pair stay in registers beside 8 accumulators
  fused_chunk<4>(WidenS4{gp + a16w4_header(offsets) + (k0 % group) / 2 * kPanel}, a, lda, kc, g, m, k0 % group != 0,
                 tile_out);
  if ((k0 + kc) % group != 0) return;
  const A16W4Header h(gp, offsets);
  for (int64_t i = 0; i < m; ++i) {
    const __m256 xs = _mm256_broadcast_ss(xsum + i * ldxs);
    float* ci = c + i * kPanel;
    const float* gi = g + i * kPanel;
    _mm256_storeu_ps(ci, h.fold(0, _mm256_loadu_ps(gi), xs, _mm256_loadu_ps(ci)));
    _mm256_storeu_ps(ci + 8, h.fold(1, _mm256_loadu_ps(gi + 8), xs, _mm256_loadu_ps(ci + 8)));
  }
}

}  // namespace lowbit::cpu::avx2
