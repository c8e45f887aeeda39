// Portable fp32 panel GEMM: a row block of activations times one dequantized [kc][16] weight tile.
#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu::generic {

void gemm_f32_panel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m,
                    bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    float acc[kPanel];
    for (int64_t j = 0; j < kPanel; ++j) acc[j] = accumulate ? c[i * kPanel + j] : 0.f;
    const float* ai = a + i * lda;
    for (int64_t k = 0; k < kc; ++k) {
      const float x = ai[k];
      for (int64_t j = 0; j < kPanel; ++j) acc[j] += x * b[k * kPanel + j];
    }
    for (int64_t j = 0; j < kPanel; ++j) c[i * kPanel + j] = acc[j];
  }
}

}  // namespace lowbit::cpu::generic
