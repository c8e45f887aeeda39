// Portable fp32 panel GEMM: a row block of activations times one dequantized [kc][16] weight tile.
#include <cstring>

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

// The fused chunks are the two steps they stand for.
void gemm_a16w8_chunk(const uint8_t* panel, int64_t k0, int64_t kc, const float* a, int64_t lda, float* c,
                      int64_t m, bool accumulate, float* tile) {
  widen_a16w8(panel, k0, kc, tile);
  gemm_f32_panel(a, lda, tile, kc, c, m, accumulate);
}

void gemm_a16w4_chunk(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, const float* a,
                      int64_t lda, const float* xsum, int64_t ldxs, float* g, float* c, int64_t m, float* tile) {
  widen_a16w4(panel, group, offsets, k0, kc, tile);
  gemm_f32_panel(a, lda, tile, kc, g, m, k0 % group != 0);
  if ((k0 + kc) % group != 0) return;
  float scale[kPanel], zero[kPanel], offset[kPanel];
  a16w4_group_header(panel + k0 / group * a16w4_group_bytes(group, offsets), offsets, scale, zero, offset);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < kPanel; ++j) {
      const float xs = xsum[i * ldxs];
      c[i * kPanel + j] = offset[j] * xs + (c[i * kPanel + j] + scale[j] * (g[i * kPanel + j] - zero[j] * xs));
    }
}

}  // namespace lowbit::cpu::generic
