// Portable int8 x int8 -> int32 panel GEMM and the per-row dynamic activation quantization of da8w8.
#include <cmath>

#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu::generic {

void quantize_row_s8(const float* x, int64_t K, int64_t K4, int8_t* xq, float* scale) {
  float amax = 0.f;
  bool finite = true;
  for (int64_t k = 0; k < K; ++k) {
    finite &= std::isfinite(x[k]);
    amax = std::fmax(amax, std::fabs(x[k]));
  }
  if (!finite || amax == 0.f) {
    // all-zero row: every product is 0 whatever the scale; non-finite row: the scale carries the NaN
    for (int64_t k = 0; k < K4; ++k) xq[k] = 0;
    *scale = finite ? 0.f : NAN;
    return;
  }
  // Below amax = 2^-120, 127 / amax would overflow (from about 3.7e-37 on): such a row is first multiplied by
  // 2^64, which is exact (a power of two; every element stays below 2^-56), so it gets the values the formula
  // gives with an unbounded exponent range. Ordinary rows multiply by 1: the formula of the vector variants.
  const float boost = amax < 0x1p-120f ? 0x1p64f : 1.f;
  const float inv = 127.f / (amax * boost);
  for (int64_t k = 0; k < K; ++k) {
    float q = std::nearbyint(x[k] * boost * inv);  // default rounding mode: half to even, like torch.round
    q = std::fmin(std::fmax(q, -127.f), 127.f);
    xq[k] = int8_t(q);
  }
  for (int64_t k = K; k < K4; ++k) xq[k] = 0;
  *scale = amax / 127.f;
}

void gemm_s8_panel(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m) {
  for (int64_t i = 0; i < m; ++i) {
    int32_t acc[kPanel] = {};
    const int8_t* ai = a + i * lda;
    for (int64_t k = 0; k < K4; k += 4) {
      const int8_t* wk = w + k * kPanel;  // [16 columns][4 k]
      for (int64_t j = 0; j < kPanel; ++j)
        for (int64_t t = 0; t < 4; ++t) acc[j] += int32_t(ai[k + t]) * int32_t(wk[j * 4 + t]);
    }
    for (int64_t j = 0; j < kPanel; ++j) c[i * kPanel + j] = acc[j];
  }
}

}  // namespace lowbit::cpu::generic
