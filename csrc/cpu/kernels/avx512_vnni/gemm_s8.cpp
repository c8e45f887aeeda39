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
#include "cpu/kernels/linear.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

// sum of a[0:K4) (int8); |sum| <= 127 * K4 fits int32.
int32_t row_sum(const int8_t* a, int64_t K4) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i s = _mm512_setzero_si512();
  int64_t k = 0;
  for (; k + 64 <= K4; k += 64) s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(a + k));
  if (k < K4) {
    const __mmask64 tail = (~__mmask64(0)) >> (64 - (K4 - k));
    s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(tail, a + k));
  }
  return _mm512_reduce_add_epi32(s);
}

// c[r][j * 16 + col] = a[r] . w_j[col] over K4 for r < R and NP panels j (weights w[j], each [K4/4][16][4]).
template <int R, int NP>
void tile(const int8_t* a, int64_t lda, const int8_t* const* w, int64_t K4, int32_t* c) {
  // the row sums first: a call after the main loop would make GCC keep the accumulators in memory
  int32_t sums[R];
  for (int r = 0; r < R; ++r) sums[r] = row_sum(a + r * lda, K4);
  __m512i acc[R][NP];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) acc[r][j] = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(int8_t(0x80));
  for (int64_t k = 0; k < K4; k += 4) {
    __m512i wu[NP];
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(w[j] + k * kPanel) + kPrefetch, _MM_HINT_T0);
      wu[j] = _mm512_xor_si512(_mm512_loadu_si512(w[j] + k * kPanel), flip);  // w + 128, unsigned
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * lda + k, 4);
      const __m512i av = _mm512_set1_epi32(quad);
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) acc[r][j] = dpbusd(acc[r][j], wu[j], av);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    // 128 * sum may wrap, and wraps alike on both sides of the subtraction
    const __m512i comp = _mm512_slli_epi32(_mm512_set1_epi32(sums[r]), 7);
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j)
      _mm512_storeu_si512(c + (r * NP + j) * kPanel, _mm512_sub_epi32(acc[r][j], comp));
  }
}

// up to 12 rows: with 2 panels, 24 independent accumulators cover vpdpbusd's latency at two per cycle, and
// 2 weight loads + 12 broadcasts feed 24 multiplies
constexpr int kMaxRows = 12;

template <int NP>
void tile_rows_of(int64_t rows, const int8_t* a, int64_t lda, const int8_t* const* w, int64_t K4, int32_t* c) {
  switch (rows) {
#define LOWBIT_ROWS(R) \
  case R: return tile<R, NP>(a, lda, w, K4, c);
    LOWBIT_ROWS(1) LOWBIT_ROWS(2) LOWBIT_ROWS(3) LOWBIT_ROWS(4) LOWBIT_ROWS(5) LOWBIT_ROWS(6)
    LOWBIT_ROWS(7) LOWBIT_ROWS(8) LOWBIT_ROWS(9) LOWBIT_ROWS(10) LOWBIT_ROWS(11) LOWBIT_ROWS(12)
#undef LOWBIT_ROWS
  }
}

// c[i][j * 16 + col] for i < m, in balanced row tiles.
template <int NP>
void gemm_s8(const int8_t* a, int64_t lda, const int8_t* const* w, int64_t K4, int32_t* c, int64_t m) {
  const int64_t tiles = (m + kMaxRows - 1) / kMaxRows;
  for (int64_t t = 0, i = 0; t < tiles; ++t) {
    const int64_t r = tile_rows(m - i, tiles - t);
    tile_rows_of<NP>(r, a + i * lda, lda, w, K4, c + i * NP * kPanel);
    i += r;
  }
}

constexpr int64_t kRowBlock = 64;

template <int NP>
void da8w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p, int32_t* acc, float* c) {
  const int64_t K4 = round_up4(a.K), panel_bytes = da8w8_panel_bytes(a.K);
  const uint8_t* panel[NP];
  const int8_t* w[NP];
  for (int j = 0; j < NP; ++j) {
    panel[j] = a.packed + (p + j) * panel_bytes;
    w[j] = reinterpret_cast<const int8_t*>(panel[j] + kPanel * 8);
  }
  for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
    const int64_t m = a.M - i0 < kRowBlock ? a.M - i0 : kRowBlock;
    gemm_s8<NP>(a.xq + i0 * K4, K4, w, K4, acc, m);
    for (int j = 0; j < NP; ++j) {
      const __m512 ws = _mm512_loadu_ps(reinterpret_cast<const float*>(panel[j]));
      for (int64_t i = 0; i < m; ++i) {
        const __m512 v = _mm512_cvtepi32_ps(_mm512_loadu_si512(acc + (i * NP + j) * kPanel));
        _mm512_storeu_ps(c + i * kPanel, _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(a.x_scale[i0 + i])), ws));
      }
      store_rows(kt, a, c, kPanel, p + j, i0, m);
    }
  }
}

}  // namespace

void gemm_s8_panel(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m) {
  gemm_s8<1>(a, lda, &w, K4, c, m);
}

// Two panels at a time (the default driver takes one): twice the multiplies per activation broadcast.
void linear_da8w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  alignas(64) int32_t acc[kRowBlock * 2 * kPanel];
  alignas(64) float c[kRowBlock * kPanel];
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) da8w8_panels<2>(kt, a, p, acc, c);
  if (p < p1) da8w8_panels<1>(kt, a, p, acc, c);
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
