// AVX2 int8 x int8 -> int32 panel GEMM and per-row activation quantization (da8w8).
//
// Without VNNI the 4-byte dot product is vpmaddubsw (u8 x s8 -> pairs of s16) + vpmaddwd (pairs -> s32).
// vpmaddubsw needs one unsigned operand and saturates at 2^15: we feed it |w| (0..128, unsigned) and the
// activation with w's sign moved onto it (|a| <= 127 by construction), so a pair is at most
// 2 * 128 * 127 = 32512 < 32767: exact, no compensation term, any int8 weight including -128.
#include <immintrin.h>

#include <cstring>

#include "cpu/kernels/avx2/avx2.h"
#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu::avx2 {
namespace {

template <int R>
void tile(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c) {
  __m256i acc[R][2];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t k = 0; k < K4; k += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanel) + 1024, _MM_HINT_T0);
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k * kPanel));       // cols 0-7
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k * kPanel + 32));  // cols 8-15
    const __m256i u0 = _mm256_abs_epi8(w0), u1 = _mm256_abs_epi8(w1);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * lda + k, 4);
      const __m256i x = _mm256_set1_epi32(quad);
      const __m256i p0 = _mm256_maddubs_epi16(u0, _mm256_sign_epi8(x, w0));
      const __m256i p1 = _mm256_maddubs_epi16(u1, _mm256_sign_epi8(x, w1));
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * kPanel), acc[r][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * kPanel + 8), acc[r][1]);
  }
}

using TileFn = void (*)(const int8_t*, int64_t, const int8_t*, int64_t, int32_t*);
constexpr TileFn kTiles[5] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>};

}  // namespace

void gemm_s8_panel(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m) {
  for (int64_t i = 0; i < m; i += 4) {
    const int64_t r = m - i < 4 ? m - i : 4;
    kTiles[r](a + i * lda, lda, w, K4, c + i * kPanel);
  }
}

void quantize_row_s8(const float* x, int64_t K, int64_t K4, int8_t* xq, float* scale) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(__builtin_huge_valf());
  __m256 vmax = _mm256_setzero_ps();
  __m256 finite = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + k), abs_mask);
    finite = _mm256_and_ps(finite, _mm256_cmp_ps(a, inf, _CMP_LT_OQ));  // false for Inf and NaN
    vmax = _mm256_max_ps(vmax, a);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float amax = 0.f;
  for (float v : lanes) amax = v > amax ? v : amax;
  bool all_finite = _mm256_movemask_ps(finite) == 0xff;
  for (; k < K; ++k) {
    const float a = x[k] < 0 ? -x[k] : x[k];
    all_finite &= a < __builtin_huge_valf();
    amax = a > amax ? a : amax;
  }
  // rare rows keep one copy: non-finite, all zero, or amax < 2^-120, where 127 / amax would overflow (the generic
  // function scales such a row by 2^64 first)
  if (!all_finite || amax < 0x1p-120f) return generic::quantize_row_s8(x, K, K4, xq, scale);

  const float inv = 127.f / amax;
  const __m256 vinv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.f), hi = _mm256_set1_ps(127.f);
  for (k = 0; k + 8 <= K; k += 8) {
    __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k), vinv),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
    const __m256i i32 = _mm256_cvtps_epi32(q);
    const __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(xq + k), _mm_packs_epi16(i16, i16));
  }
  for (; k < K; ++k) {
    float q = __builtin_nearbyintf(x[k] * inv);
    q = q < -127.f ? -127.f : (q > 127.f ? 127.f : q);
    xq[k] = int8_t(q);
  }
  for (; k < K4; ++k) xq[k] = 0;
  *scale = amax / 127.f;
}

}  // namespace lowbit::cpu::avx2
