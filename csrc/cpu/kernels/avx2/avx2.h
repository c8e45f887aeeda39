// The AVX2 + FMA + F16C variant's micro-kernels (what each computes: api.h). Compiled with -mavx2 -mfma
// -mf16c; only called after CPUID said yes. Tails that do not fill a vector reuse the generic scalar code.
#pragma once

#include <immintrin.h>

#include "cpu/kernels/api.h"

namespace lowbit::cpu::avx2 {

void to_f32(const void* src, ActDType dtype, float* dst, int64_t n);
void from_f32(const float* src, const float* bias, void* dst, ActDType dtype, int64_t n);
void widen_a16w8(const uint8_t* panel, int64_t k0, int64_t kc, float* dst);
void widen_a16w4(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, float* dst);
void gemv_a16w8(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, int64_t m, float* c);
void gemv_a16w4(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                const float* xsum, int64_t m, float* c);
void gemm_f32_panel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m, bool accumulate);
void gemm_a16w8_chunk(const uint8_t* panel, int64_t k0, int64_t kc, const float* a, int64_t lda, float* c,
                      int64_t m, bool accumulate, float* tile);
void gemm_a16w4_chunk(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, const float* a,
                      int64_t lda, const float* xsum, int64_t ldxs, float* g, float* c, int64_t m, float* tile);
void quantize_row_s8(const float* x, int64_t K, int64_t K4, int8_t* xq, float* scale);
void gemm_s8_panel(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m);
void linear_da8w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);


// A group header's 16 scales, zero points and offsets as two halves of 8 (zero points exact with offsets 0, or
// float offsets with zero points 0: api.h gemv_a16w4).
struct A16W4Header {
  __m256 s[2], z[2], o[2];
  A16W4Header(const uint8_t* gp, bool offsets) {
    const auto* f = reinterpret_cast<const float*>(gp);
    for (int h = 0; h < 2; ++h) {
      s[h] = _mm256_loadu_ps(f + 8 * h);
      if (offsets) {
        z[h] = _mm256_setzero_ps();
        o[h] = _mm256_loadu_ps(f + kPanel + 8 * h);
      } else {
        z[h] = _mm256_cvtepi32_ps(
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(gp + kA16W4Zeros + 8 * h))));
        o[h] = _mm256_setzero_ps();
      }
    }
  }
  // c + s * (acc - z * xs) + o * xs
  __m256 fold(int h, __m256 acc, __m256 xs, __m256 c) const {
    return _mm256_fmadd_ps(o[h], xs, _mm256_fmadd_ps(s[h], _mm256_fnmadd_ps(z[h], xs, acc), c));
  }
};

}  // namespace lowbit::cpu::avx2
