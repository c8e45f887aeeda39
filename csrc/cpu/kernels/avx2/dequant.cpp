// AVX2 weight dequantization of one packed panel to an fp32 [kc][16] tile: 16 columns = two registers.
#include <immintrin.h>

#include <algorithm>

#include "cpu/kernels/avx2/avx2.h"

namespace lowbit::cpu::avx2 {
namespace {

// 16 bytes holding values 0..255 or -128..127 -> two registers of 8 floats
inline void widen_u8(__m128i b, __m256& lo, __m256& hi) {
  lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
  hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)));
}

}  // namespace

void dequant_a16w8(const uint8_t* panel, int64_t k0, int64_t kc, float* dst) {
  const __m256 s0 = _mm256_loadu_ps(reinterpret_cast<const float*>(panel));
  const __m256 s1 = _mm256_loadu_ps(reinterpret_cast<const float*>(panel) + 8);
  const uint8_t* w = panel + kPanel * 4 + k0 * kPanel;
  for (int64_t k = 0; k < kc; ++k) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * kPanel));
    const __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
    const __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
    _mm256_storeu_ps(dst + k * kPanel, _mm256_mul_ps(lo, s0));
    _mm256_storeu_ps(dst + k * kPanel + 8, _mm256_mul_ps(hi, s1));
  }
}

void dequant_a16w4(const uint8_t* panel, int64_t group, int64_t k0, int64_t kc, float* dst) {
  const int64_t group_bytes = a16w4_group_bytes(group);
  const __m128i low4 = _mm_set1_epi8(0x0f);
  for (int64_t k = k0; k < k0 + kc;) {
    // one stretch of k inside a single group: its scales and zeros stay in registers
    const int64_t end = std::min(k0 + kc, (k / group + 1) * group);
    const uint8_t* g = panel + (k / group) * group_bytes;
    const auto* sz = reinterpret_cast<const float*>(g);
    const __m256 s0 = _mm256_loadu_ps(sz), s1 = _mm256_loadu_ps(sz + 8);
    const __m256 z0 = _mm256_loadu_ps(sz + 16), z1 = _mm256_loadu_ps(sz + 24);
    const uint8_t* q = g + kPanel * 8 + (k % group) / 2 * kPanel;
    for (; k < end; k += 2, q += kPanel) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      __m256 a0, a1, b0, b1;
      widen_u8(_mm_and_si128(b, low4), a0, a1);                     // k
      widen_u8(_mm_and_si128(_mm_srli_epi16(b, 4), low4), b0, b1);  // k + 1
      float* d = dst + (k - k0) * kPanel;
      // (q - z) is exact, then one rounding by the scale: the same value as the generic variant
      _mm256_storeu_ps(d, _mm256_mul_ps(_mm256_sub_ps(a0, z0), s0));
      _mm256_storeu_ps(d + 8, _mm256_mul_ps(_mm256_sub_ps(a1, z1), s1));
      _mm256_storeu_ps(d + 16, _mm256_mul_ps(_mm256_sub_ps(b0, z0), s0));
      _mm256_storeu_ps(d + 24, _mm256_mul_ps(_mm256_sub_ps(b1, z1), s1));
    }
  }
}

}  // namespace lowbit::cpu::avx2
