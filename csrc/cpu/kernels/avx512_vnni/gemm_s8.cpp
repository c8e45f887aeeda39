// int8 x int8 -> int32 panel GEMM with vpdpbusd (da8w8).
//
// vpdpbusd multiplies unsigned bytes of its first source by signed bytes of its second and adds each group
// of 4 products to an int32 lane. Its memory operand can be a broadcast dword, and that operand is the signed
// one: so the activations (int8, the same 4 bytes for all 16 columns) are read straight from memory, and the
// weights become unsigned as w + 128 (one XOR per panel row, shared by every row of the tile). Then
//   sum_k (w + 128) * a = sum_k w * a + 128 * sum_k a,
// and the row sum of the activations (one vpdpbusd of 64 bytes against ones per 16 steps of the main loop)
// removes the second term. The int32 lanes may wrap on the way (|w + 128| <= 255), but the true result fits
// int32 (K <= kMaxK8) and two's-complement sums are exact modulo 2^32, so the difference is exact; every sum
// that may wrap is a vector instruction, which wraps by definition.
#include "cpu/kernels/avx512_vnni/avx512.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

// 128 * sum of a[0:K4) (int8), in every lane of the result.
__m512i row_sum_times_128(const int8_t* a, int64_t K4) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i s = _mm512_setzero_si512();
  int64_t k = 0;
  for (; k + 64 <= K4; k += 64) s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(a + k));
  if (k < K4) {
    const __mmask64 tail = (~__mmask64(0)) >> (64 - (K4 - k));
    s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(tail, a + k));
  }
  // |sum| <= 127 * K4 fits int32; the shift by 7 may wrap, and wraps alike on both sides of the subtraction
  return _mm512_slli_epi32(_mm512_set1_epi32(_mm512_reduce_add_epi32(s)), 7);
}

template <int R>
void tile(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c) {
  __m512i acc[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(int8_t(0x80));
  for (int64_t k = 0; k < K4; k += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanel) + 1024, _MM_HINT_T0);
    const __m512i wu = _mm512_xor_si512(_mm512_loadu_si512(w + k * kPanel), flip);  // w + 128, unsigned
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * lda + k, 4);
      acc[r] = _mm512_dpbusd_epi32(acc[r], wu, _mm512_set1_epi32(quad));
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    _mm512_storeu_si512(c + r * kPanel, _mm512_sub_epi32(acc[r], row_sum_times_128(a + r * lda, K4)));
}

using TileFn = void (*)(const int8_t*, int64_t, const int8_t*, int64_t, int32_t*);
// up to 12 rows: 12 independent accumulators cover vpdpbusd's latency at two per cycle
constexpr int kMaxRows = 12;
constexpr TileFn kTiles[kMaxRows + 1] = {nullptr,  tile<1>, tile<2>, tile<3>, tile<4>,  tile<5>, tile<6>,
                                         tile<7>,  tile<8>, tile<9>, tile<10>, tile<11>, tile<12>};

}  // namespace

void gemm_s8_panel(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m) {
  const int64_t tiles = (m + kMaxRows - 1) / kMaxRows;
  for (int64_t t = 0, i = 0; t < tiles; ++t) {
    const int64_t r = tile_rows(m - i, tiles - t);
    kTiles[r](a + i * lda, lda, w, K4, c + i * kPanel);
    i += r;
  }
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
