// AVX2 fp32 panel GEMM: register tiles of up to 6 rows x 16 columns (12 accumulators + 2 weight registers
// + 1 broadcast = 15 of the 16 ymm registers), so each weight vector loaded serves 6 rows.
#include <immintrin.h>

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

}  // namespace

void gemm_f32_panel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m,
                    bool accumulate) {
  for (int64_t i = 0; i < m; i += 6) {
    const int64_t r = m - i < 6 ? m - i : 6;
    kTiles[r](a + i * lda, lda, b, kc, c + i * kPanel, accumulate);
  }
}

}  // namespace lowbit::cpu::avx2
