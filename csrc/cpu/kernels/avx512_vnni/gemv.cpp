// Decode kernels (m <= 4 rows) with 512-bit FMA: a 16-column panel row is one zmm, so each k costs one
// widening load, one conversion and one FMA per row. fp32 activations (the bf16 variant multiplies bf16
// activations in pairs instead: avx512_bf16/).
#include "cpu/kernels/avx512_vnni/avx512.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {


template <int R>
void gemv_a16w8_rows(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, float* c) {
  const uint8_t* w = panel + kPanel * 4;
  // two accumulators per row (even and odd k): one chain would wait on the FMA latency
  __m512 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 2 <= K; k += 2) {
    _mm_prefetch(reinterpret_cast<const char*>(w + k * kPanel) + kPrefetch, _MM_HINT_T0);
    const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * kPanel))));
    const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + (k + 1) * kPanel))));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      acc[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + k]), w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + k + 1]), w1, acc[r][1]);
    }
  }
  if (k < K) {
    const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * kPanel))));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + k]), w0, acc[r][0]);
  }
  const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(panel));
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(c + r * kPanel, _mm512_mul_ps(_mm512_add_ps(acc[r][0], acc[r][1]), s));
}

// One k pair of a16w4: 16 bytes (byte j = q[k][j] | q[k+1][j] << 4) zero-extended to 16 dwords, then the
// low and high nibbles as two fp32 vectors.
template <int R>
void gemv_a16w4_rows(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                     const float* xsum, float* c) {
  const __m512i low4 = _mm512_set1_epi32(15);
  const int64_t groups = K / group, group_bytes = a16w4_group_bytes(group, offsets);
  __m512 out[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* gp = panel + g * group_bytes;
    const uint8_t* q = gp + a16w4_header(offsets);
    const float* xg = x + g * group;
    __m512 acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < group; k += 2, q += kPanel) {
      _mm_prefetch(reinterpret_cast<const char*>(q) + kPrefetch, _MM_HINT_T0);
      const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(b, low4));
      const __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        acc[r][0] = _mm512_fmadd_ps(_mm512_set1_ps(xg[r * ldx + k]), lo, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(_mm512_set1_ps(xg[r * ldx + k + 1]), hi, acc[r][1]);
      }
    }
    const A16W4Header h(gp, offsets);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      out[r] = h.fold(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_set1_ps(xsum[r * groups + g]), out[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(c + r * kPanel, out[r]);
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

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
