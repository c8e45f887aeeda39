// AVX2/F16C dtype conversions; bit-identical to generic/convert.cpp for every non-NaN value.
#include <immintrin.h>

#include "cpu/kernels/avx2/avx2.h"
#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu::avx2 {
namespace {

// bf16 -> fp32, subnormals read as signed zero (as generic::to_f32)
inline __m256 load_bf16(const uint16_t* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i sub = _mm256_cmpeq_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x7f80)), _mm256_setzero_si256());
  w = _mm256_andnot_si256(_mm256_and_si256(sub, _mm256_set1_epi32(0x7fff)), w);
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

inline void store_bf16(uint16_t* p, __m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}

}  // namespace

void to_f32(const void* src, ActDType dtype, float* dst, int64_t n) {
  if (dtype == ActDType::f32) return generic::to_f32(src, dtype, dst, n);
  auto s = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  if (dtype == ActDType::bf16) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16(s + i));
  } else {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  }
  generic::to_f32(s + i, dtype, dst + i, n - i);
}

void from_f32(const float* src, const float* bias, void* dst, ActDType dtype, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
    switch (dtype) {
      case ActDType::f32: _mm256_storeu_ps(static_cast<float*>(dst) + i, v); break;
      case ActDType::bf16: store_bf16(static_cast<uint16_t*>(dst) + i, v); break;
      case ActDType::f16:
        _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint16_t*>(dst) + i),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        break;
    }
  }
  const size_t es = dtype == ActDType::f32 ? 4 : 2;
  generic::from_f32(src + i, bias ? bias + i : nullptr, static_cast<char*>(dst) + i * es, dtype, n - i);
}

}  // namespace lowbit::cpu::avx2
