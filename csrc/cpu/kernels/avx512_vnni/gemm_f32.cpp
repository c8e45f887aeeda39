// fp32 panel GEMM with 512-bit FMA: register tiles of up to 12 rows x 16 columns (12 accumulators, each a
// whole panel row), so each weight vector loaded serves 12 rows and 12 independent chains cover the FMA
// latency. fp16/fp32 activations, and bf16 ones on CPUs without AVX512-BF16.
//
// The fused a16 kernels widen the packed weights inside the first row tile, feeding its FMAs from registers
// and writing the fp32 tile for the other row tiles on the way (as the AVX2 variant does).
#include <type_traits>

#include "cpu/kernels/avx512_vnni/avx512.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

constexpr int kMaxRows = 12;

template <int R>
void tile(const float* a, int64_t lda, const float* b, int64_t kc, float* c, bool accumulate) {
  __m512 acc[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = accumulate ? _mm512_loadu_ps(c + r * kPanel) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 bk = _mm512_loadu_ps(b + k * kPanel);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + k]), bk, acc[r]);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(c + r * kPanel, acc[r]);
}

using TileFn = void (*)(const float*, int64_t, const float*, int64_t, float*, bool);
constexpr TileFn kTiles[kMaxRows + 1] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>,  tile<5>,  tile<6>,
                                         tile<7>, tile<8>, tile<9>, tile<10>, tile<11>, tile<12>};

// Rows [first, m) from the fp32 tile b, in as few balanced tiles of at most kMaxRows rows as possible.
void rest_tiles(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t first, int64_t m,
                bool accumulate) {
  const int64_t tiles = (m - first + kMaxRows - 1) / kMaxRows;
  for (int64_t t = 0, i = first; t < tiles; ++t) {
    const int64_t r = tile_rows(m - i, tiles - t);
    kTiles[r](a + i * lda, lda, b, kc, c + i * kPanel, accumulate);
    i += r;
  }
}

// The first row tile of a fused kernel. Src::kStep k per step; src.get(k, w) fills w[s] with the weights of
// k + s. With Store, the weights also go to tile[kc][16].
template <int R, bool Store, typename Src>
void fused_tile(const Src& src, const float* a, int64_t lda, int64_t kc, float* c, bool accumulate,
                float* tile_out) {
  constexpr int S = Src::kStep;
  __m512 acc[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = accumulate ? _mm512_loadu_ps(c + r * kPanel) : _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k += S) {
    __m512 w[S];
    src.get(k, w);
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) {
      if (Store) _mm512_storeu_ps(tile_out + (k + s) * kPanel, w[s]);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + k + s]), w[s], acc[r]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(c + r * kPanel, acc[r]);
}

template <typename Src>
void fused_chunk(const Src& src, const float* a, int64_t lda, int64_t kc, float* c, int64_t m, bool accumulate,
                 float* tile_out) {
  const int64_t r0 = tile_rows(m, (m + kMaxRows - 1) / kMaxRows);
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
    case 5: first(std::integral_constant<int, 5>{}); break;
    case 6: first(std::integral_constant<int, 6>{}); break;
    case 7: first(std::integral_constant<int, 7>{}); break;
    case 8: first(std::integral_constant<int, 8>{}); break;
    case 9: first(std::integral_constant<int, 9>{}); break;
    case 10: first(std::integral_constant<int, 10>{}); break;
    case 11: first(std::integral_constant<int, 11>{}); break;
    default: first(std::integral_constant<int, 12>{}); break;
  }
  if (more) rest_tiles(a, lda, tile_out, kc, c, r0, m, accumulate);
}

// int8 weights of one k widened to fp32, exact and unscaled
struct WidenS8 {
  static constexpr int kStep = 1;
  const uint8_t* w;  // k = 0 of the chunk
  void get(int64_t k, __m512* out) const {
    _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanel) + kPrefetch, _MM_HINT_T0);
    out[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * kPanel))));
  }
};

// int4 nibbles of one k pair widened to fp32, exact (no scale, no zero point)
struct WidenS4 {
  static constexpr int kStep = 2;
  const uint8_t* q;  // the byte of k = 0, 1 of the chunk
  void get(int64_t k, __m512* out) const {
    _mm_prefetch(reinterpret_cast<const char*>(q + k / 2 * kPanel) + kPrefetch, _MM_HINT_T0);
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k / 2 * kPanel)));
    out[0] = _mm512_cvtepi32_ps(_mm512_and_si512(b, _mm512_set1_epi32(15)));
    out[1] = _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4));
  }
};

}  // namespace

void gemm_f32_panel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m,
                    bool accumulate) {
  rest_tiles(a, lda, b, kc, c, 0, m, accumulate);
}

void gemm_a16w8_chunk(const uint8_t* panel, int64_t k0, int64_t kc, const float* a, int64_t lda, float* c,
                      int64_t m, bool accumulate, float* tile_out) {
  fused_chunk(WidenS8{panel + kPanel * 4 + k0 * kPanel}, a, lda, kc, c, m, accumulate, tile_out);
}

void gemm_a16w4_chunk(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, const float* a,
                      int64_t lda, const float* xsum, int64_t ldxs, float* g, float* c, int64_t m, float* tile_out) {
  const uint8_t* gp = panel + k0 / group * a16w4_group_bytes(group, offsets);
  fused_chunk(WidenS4{gp + a16w4_header(offsets) + (k0 % group) / 2 * kPanel}, a, lda, kc, g, m, k0 % group != 0,
              tile_out);
  if ((k0 + kc) % group != 0) return;
  const A16W4Header h(gp, offsets);
  for (int64_t i = 0; i < m; ++i)
    _mm512_storeu_ps(c + i * kPanel, h.fold(_mm512_loadu_ps(g + i * kPanel), _mm512_set1_ps(xsum[i * ldxs]),
                                            _mm512_loadu_ps(c + i * kPanel)));
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
