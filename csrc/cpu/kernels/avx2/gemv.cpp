// AVX2 decode kernels (m <= 4 rows): each packed weight byte is loaded once, widened in registers and
// multiplied into every row; nothing is written back but the 16 outputs per row.
#include <immintrin.h>

#include "cpu/kernels/avx2/avx2.h"

namespace lowbit::cpu::avx2 {
namespace {

// Bytes ahead of the weights being read that each step asks the cache for (the hardware prefetcher alone
// leaves the decode waiting on DRAM); past the panel's end it touches the next panel or nothing (a prefetch
// never faults).
constexpr int kPrefetch = 1024;

template <int R>
void gemv_a16w8_rows(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, float* c) {
  const uint8_t* w = panel + kPanel * 4;
  __m256 acc[R][2];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    // (measured: it pays from two rows on; one row is faster without it)
    if (R > 1) _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanel) + kPrefetch, _MM_HINT_T0);
    // each half sign-extended straight from memory (vpmovsxbd ymm, m64): no 16-byte load and byte shift
    const __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + k * kPanel))));
    const __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + k * kPanel + 8))));
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_broadcast_ss(x + r * ldx + k);
      acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
    }
  }
  const __m256 s0 = _mm256_loadu_ps(reinterpret_cast<const float*>(panel));
  const __m256 s1 = _mm256_loadu_ps(reinterpret_cast<const float*>(panel) + 8);
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + r * kPanel, _mm256_mul_ps(acc[r][0], s0));
    _mm256_storeu_ps(c + r * kPanel + 8, _mm256_mul_ps(acc[r][1], s1));
  }
}

// The 16 bytes of one k pair are broadcast to both 128-bit lanes; one in-lane byte shuffle then places
// byte j of columns 0-7 (or 8-15) in dword j, zero-extended: the low nibble is k, the high nibble k + 1.
template <int R>
void gemv_a16w4_rows(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                     const float* xsum, float* c) {
  const __m256i cols_lo = _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1,  //
                                           4, -1, -1, -1, 5, -1, -1, -1, 6, -1, -1, -1, 7, -1, -1, -1);
  const __m256i cols_hi = _mm256_add_epi8(cols_lo, _mm256_setr_epi8(8, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0,
                                                                    8, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0, 8, 0, 0, 0));
  const __m256i low4 = _mm256_set1_epi32(15);
  const int64_t groups = K / group, group_bytes = a16w4_group_bytes(group, offsets);
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + r * kPanel, _mm256_setzero_ps());
    _mm256_storeu_ps(c + r * kPanel + 8, _mm256_setzero_ps());
  }
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* gp = panel + g * group_bytes;
    const uint8_t* q = gp + a16w4_header(offsets);
    const float* xg = x + g * group;
    // with one or two rows, k and k + 1 go to separate accumulators: one chain would wait on the FMA latency
    constexpr int S = R <= 2 ? 2 : 1;
    __m256 acc[R][2][S];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s) acc[r][0][s] = acc[r][1][s] = _mm256_setzero_ps();
    for (int64_t k = 0; k < group; k += 2, q += kPanel) {
      _mm_prefetch(reinterpret_cast<const char*>(q) + kPrefetch, _MM_HINT_T0);
      const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
      // columns 0-7, then 8-15: one half's widened weights at a time keeps 4 rows' accumulators in registers
      const __m256i e0 = _mm256_shuffle_epi8(b, cols_lo);
      const __m256 a0 = _mm256_cvtepi32_ps(_mm256_and_si256(e0, low4));
      const __m256 b0 = _mm256_cvtepi32_ps(_mm256_srli_epi32(e0, 4));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        acc[r][0][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(xg + r * ldx + k), a0, acc[r][0][0]);
        acc[r][0][S - 1] = _mm256_fmadd_ps(_mm256_broadcast_ss(xg + r * ldx + k + 1), b0, acc[r][0][S - 1]);
      }
      const __m256i e1 = _mm256_shuffle_epi8(b, cols_hi);
      const __m256 a1 = _mm256_cvtepi32_ps(_mm256_and_si256(e1, low4));
      const __m256 b1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(e1, 4));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        acc[r][1][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(xg + r * ldx + k), a1, acc[r][1][0]);
        acc[r][1][S - 1] = _mm256_fmadd_ps(_mm256_broadcast_ss(xg + r * ldx + k + 1), b1, acc[r][1][S - 1]);
      }
    }
    const A16W4Header h(gp, offsets);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 xs = _mm256_broadcast_ss(xsum + r * groups + g);
      float* cr = c + r * kPanel;
      const __m256 acc0 = S == 2 ? _mm256_add_ps(acc[r][0][0], acc[r][0][S - 1]) : acc[r][0][0];
      const __m256 acc1 = S == 2 ? _mm256_add_ps(acc[r][1][0], acc[r][1][S - 1]) : acc[r][1][0];
      _mm256_storeu_ps(cr, h.fold(0, acc0, xs, _mm256_loadu_ps(cr)));
      _mm256_storeu_ps(cr + 8, h.fold(1, acc1, xs, _mm256_loadu_ps(cr + 8)));
    }
  }
}

}  // namespace

void gemv_a16w8(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, int64_t m, float* c) {
  switch (m) {
    case 1: return gemv_a16w8_rows<1>(panel, K, x, ldx, c);
    case 2: return gemv_a16w8_rows<2>(panel, K, x, ldx, c);
    case 3: return gemv_a16w8_rows<3>(panel, K, x, ldx, c);
    default: return gemv_a16w8_rows<4>(panel, K, x, ldx, c);
  }
}

void gemv_a16w4(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                const float* xsum, int64_t m, float* c) {
  switch (m) {
    case 1: return gemv_a16w4_rows<1>(panel, K, group, offsets, x, ldx, xsum, c);
    case 2: return gemv_a16w4_rows<2>(panel, K, group, offsets, x, ldx, xsum, c);
    case 3: return gemv_a16w4_rows<3>(panel, K, group, offsets, x, ldx, xsum, c);
    default: return gemv_a16w4_rows<4>(panel, K, group, offsets, x, ldx, xsum, c);
  }
}

}  // namespace lowbit::cpu::avx2
