// The real instructions behind the emulated intrinsics of x86_intrinsics.h, compiled with AVX-512 flags and
// called by test_emulation.cpp only when the CPU has them.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

void native_dpbf16(const float* acc, const uint16_t* a, const uint16_t* b, float* out) {
  __m512bh av, bv;
  std::memcpy(&av, a, 64);
  std::memcpy(&bv, b, 64);
  _mm512_storeu_ps(out, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), av, bv));
}

void native_dpbusd(const int32_t* acc, const uint8_t* u, const int8_t* s, int32_t* out) {
  _mm512_storeu_si512(out, _mm512_dpbusd_epi32(_mm512_loadu_si512(acc), _mm512_loadu_si512(u), _mm512_loadu_si512(s)));
}

void native_widen(const uint8_t* bytes16, int32_t* signed_out, int32_t* unsigned_out) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes16));
  _mm512_storeu_si512(signed_out, _mm512_cvtepi8_epi32(v));
  _mm512_storeu_si512(unsigned_out, _mm512_cvtepu8_epi32(v));
}
