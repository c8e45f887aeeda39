// AVX2 da8w4 driver: register tiles of up to 4 rows x one 16-column panel (two ymm halves of 8 columns).
//
// Without VNNI the 4-byte dot product is vpmaddubsw (unsigned nibble x signed activation -> pairs summed to
// int16) + vpmaddwd against ones (pairs -> int32). The nibbles are 0..15 and |xq| <= 127, so a vpmaddubsw pair
// is at most 2 * 15 * 127 = 3810 and the sum of the low- and high-nibble halves 7620: far from the int16
// saturation at 32767, so every step is exact. Per group, d = acc - z * xsum in int32 (api.h, kMaxGroupDA8W4),
// then c += s * float(d) in fp32, c kept in memory (L1) across groups.
#include <immintrin.h>

#include <cstring>

#include "cpu/kernels/avx2/avx2.h"
#include "cpu/kernels/da8w4.h"

namespace lowbit::cpu::avx2 {
namespace {

// Bytes ahead of the weight row being read that each step asks the cache for. Measured with this variant on a
// Zen 5 VM (2 threads, 4096 x 14336 and 14336 x 4096): 4096 against 1024 (the AVX2 gemv's) 5-10% faster at
// M = 1 and 25% at M = 4; no prefetch 50% slower at M = 4. (Not measured on an AVX2-only CPU.)
constexpr int kPrefetch = 4096;

inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// c[r][0:16] = sum over groups of s * float(d) for rows [i0, i0 + R) of panel `panel`.
template <int R>
void tile(const LinearArgs& a, const uint8_t* panel, int64_t i0, float* c) {
  const int64_t K = a.K, group = a.group, groups = K / group, group_bytes = da8w4_group_bytes(group);
  const __m256i low4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  for (int64_t t = 0; t < R * kPanel; ++t) c[t] = 0.f;
  const int8_t* x = a.xq + i0 * K;
  const int32_t* xsum = a.xq_sums + i0 * groups;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* gp = panel + g * group_bytes;
    const uint8_t* w = gp + kDA8W4Header;
    const int8_t* xg = x + g * group;
    __m256i acc[R][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int64_t k = 0; k < group; k += 8, w += kDA8W4Row) {
      _mm_prefetch(reinterpret_cast<const char*>(w) + kPrefetch, _MM_HINT_T0);
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));       // columns 0-7
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));  // columns 8-15
      const __m256i lo0 = _mm256_and_si256(w0, low4), hi0 = _mm256_and_si256(_mm256_srli_epi16(w0, 4), low4);
      const __m256i lo1 = _mm256_and_si256(w1, low4), hi1 = _mm256_and_si256(_mm256_srli_epi16(w1, 4), low4);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m256i x0 = broadcast4(xg + r * K + k), x1 = broadcast4(xg + r * K + k + 4);
        const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(lo0, x0), _mm256_maddubs_epi16(hi0, x1));
        const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(lo1, x0), _mm256_maddubs_epi16(hi1, x1));
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
      }
    }
    const auto* s = reinterpret_cast<const float*>(gp);
    const __m256i z0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(gp + kDA8W4Zeros)));
    const __m256i z1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(gp + kDA8W4Zeros + 8)));
    const __m256 s0 = _mm256_loadu_ps(s), s1 = _mm256_loadu_ps(s + 8);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256i xs = _mm256_set1_epi32(xsum[r * groups + g]);
      const __m256i d0 = _mm256_sub_epi32(acc[r][0], _mm256_mullo_epi32(z0, xs));
      const __m256i d1 = _mm256_sub_epi32(acc[r][1], _mm256_mullo_epi32(z1, xs));
      float* cr = c + r * kPanel;
      _mm256_storeu_ps(cr, _mm256_fmadd_ps(s0, _mm256_cvtepi32_ps(d0), _mm256_loadu_ps(cr)));
      _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(s1, _mm256_cvtepi32_ps(d1), _mm256_loadu_ps(cr + 8)));
    }
  }
}

using TileFn = void (*)(const LinearArgs&, const uint8_t*, int64_t, float*);
constexpr TileFn kTiles[5] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>};

}  // namespace

void linear_da8w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  alignas(32) float c[4 * kPanel];
  const int64_t panel_bytes = da8w4_panel_bytes(a.K, a.group);
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t i0 = 0; i0 < a.M; i0 += 4) {
      const int64_t m = a.M - i0 < 4 ? a.M - i0 : 4;
      kTiles[m](a, a.packed + p * panel_bytes, i0, c);
      da8w4_store(kt, a, c, kPanel, p, i0, m);
    }
}

}  // namespace lowbit::cpu::avx2
