// Helpers of the drivers that multiply bf16 pairs (avx512_bf16 with vdpbf16ps, amx with tdpbf16ps, whose parent it
// is): int8 / int4 weights widened to exact bf16 pairs, and a heap buffer. Included inside a variant's namespace
// (LOWBIT_VARIANT_NS), so each variant keeps its own copy, compiled with its own flags.
#pragma once

#include "cpu/kernels/x86_intrinsics.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS::bf16_pairs {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// A heap buffer without std:: templates: a std:: template instantiated here would be compiled with AVX-512 (or
// AMX) flags, and the linker may keep that copy for code that runs on CPUs without them.
template <typename T>
struct Buffer {
  T* p;
  explicit Buffer(int64_t n) : p(n > 0 ? new T[size_t(n)] : nullptr) {}
  ~Buffer() { delete[] p; }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// dword j = bf16(even[j]) | bf16(odd[j]) << 16 for fp32 vectors holding small integers (exact in bf16, so
// their bf16 is their high half): the high words of both, interleaved.
inline __m512i pair_bf16(__m512 even, __m512 odd) {
  alignas(64) static const int16_t idx[32] = {1,  33, 3,  35, 5,  37, 7,  39, 9,  41, 11, 43, 13, 45, 15, 47,
                                              17, 49, 19, 51, 21, 53, 23, 55, 25, 57, 27, 59, 29, 61, 31, 63};
  return _mm512_permutex2var_epi16(_mm512_castps_si512(even), _mm512_load_si512(idx), _mm512_castps_si512(odd));
}

// 16 int8 weights widened to fp32, exact.
inline __m512 widen_s8(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS::bf16_pairs
