// The per-group epilogue of every AVX-512 a16w4 kernel (avx512_vnni and avx512_bf16, native and emulated):
// inline in the variant's own namespace (LOWBIT_VARIANT_NS), so no two builds share a symbol.
#pragma once

#include "cpu/kernels/api.h"
#include "cpu/kernels/x86_intrinsics.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {

// An a16w4 group header's 16 scales, zero points and offsets (zero points exact with offsets 0, or float offsets
// with zero points 0: api.h gemv_a16w4). `bias` is added to the zero points (the bf16 decode folds 16 + z).
struct A16W4Header {
  __m512 s, z, o;
  A16W4Header() = default;
  A16W4Header(const uint8_t* gp, bool offsets, float bias = 0.f) {
    s = _mm512_loadu_ps(reinterpret_cast<const float*>(gp));
    if (offsets) {
      z = _mm512_set1_ps(bias);
      o = _mm512_loadu_ps(reinterpret_cast<const float*>(gp + kA16W4Zeros));
    } else {
      z = _mm512_add_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + kA16W4Zeros)))),
                        _mm512_set1_ps(bias));
      o = _mm512_setzero_ps();
    }
  }
  // c + s * (acc - z * xs) + o * xs
  __m512 fold(__m512 acc, __m512 xs, __m512 c) const {
    return _mm512_fmadd_ps(o, xs, _mm512_fmadd_ps(s, _mm512_fnmadd_ps(z, xs, acc), c));
  }
};

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
