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

void widen_a16w8(const uint8_t* panel, int64_t k0, int64_t kc, float* dst) {
  const uint8_t* w = panel + kPanel * 4 + k0 * kPanel;
  for (int64_t k = 0; k < kc; ++k) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * kPanel));
    _mm256_storeu_ps(dst + k * kPanel, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)));
    _mm256_storeu_ps(dst + k * kPanel + 8, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8))));
  }
}

void widen_a16w4(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, float* dst) {
  const int64_t group_bytes = a16w4_group_bytes(group, offsets), header = a16w4_header(offsets);
  const __m128i low4 = _mm_set1_epi8(0x0f);
  for (int64_t k = k0; k < k0 + kc;) {
    // one stretch of k inside a single group (the nibbles of consecutive groups are not adjacent)
    const int64_t end = std::min(k0 + kc, (k / group + 1) * group);
    const uint8_t* q = panel + (k / group) * group_bytes + header + (k % group) / 2 * kPanel;
    for (; k < end; k += 2, q += kPanel) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      __m256 a0, a1, b0, b1;
      widen_u8(_mm_and_si128(b, low4), a0, a1);                     // k
      widen_u8(_mm_and_si128(_mm_srli_epi16(b, 4), low4), b0, b1);  // k + 1
      float* d = dst + (k - k0) * kPanel;
      _mm256_storeu_ps(d, a0);
      _mm256_storeu_ps(d + 8, a1);
      _mm256_storeu_ps(d + 16, b0);
      _mm256_storeu_ps(d + 24, b1);
    }
  }
}

}  // namespace lowbit::cpu::avx2
