// The x86 intrinsics of the AVX-512 variants: the compiler's own (<immintrin.h>), or, in an emulated build
// (LOWBIT_SIMDE, the "<variant>-emu" twins), SIMDe's portable implementations under the same names, so one
// kernel source runs natively where the CPU has the instructions and emulated (with AVX2) anywhere else.
// Where SIMDe and the hardware differ, the emulation is told here what the hardware does.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(LOWBIT_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

// Intrinsics SIMDe 0.8.2 lacks or gets wrong, written from their documented semantics (Intel Intrinsics Guide,
// Intel SDM) in scalar code; tests/cpp/test_emulation.cpp checks each against the hardware where the CPU has
// the instruction, and against hand-worked cases everywhere. Macros rather than functions of the same name for
// the missing ones: GCC's <immintrin.h> already declares those names.
namespace lowbit::cpu::emulation {

// vpmovsxbd / vpmovzxbd: 16 signed (T = int8_t) or unsigned (T = uint8_t) bytes -> 16 int32
template <typename T>
inline simde__m512i widen_bytes(simde__m128i a) {
  T in[16];
  int32_t out[16];
  std::memcpy(in, &a, 16);
  for (int i = 0; i < 16; ++i) out[i] = in[i];
  simde__m512i r;
  std::memcpy(&r, out, 64);
  return r;
}

// vmovdqu8 with zero-masking: byte i from p when bit i of k is set, else 0; masked-off bytes are not read
inline simde__m512i maskz_loadu_epi8(simde__mmask64 k, const void* p) {
  uint8_t out[64];
  for (int i = 0; i < 64; ++i) out[i] = (k >> i) & 1 ? static_cast<const uint8_t*>(p)[i] : 0;
  simde__m512i r;
  std::memcpy(&r, out, 64);
  return r;
}

// sum of the 16 int32 lanes, wrapping like the vector adds it stands for
inline int32_t reduce_add_epi32(simde__m512i a) {
  uint32_t in[16], s = 0;
  std::memcpy(in, &a, 64);
  for (uint32_t v : in) s += v;
  return int32_t(s);
}

inline float bf16_daz(uint16_t h) {  // a bf16 input as vdpbf16ps reads it: subnormals as signed zero
  const uint32_t u = uint32_t((h & 0x7f80u) ? h : h & 0x8000u) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float f32_ftz(float f) {  // subnormal fp32 -> signed zero
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
  std::memcpy(&f, &u, 4);
  return f;
}

// vdpbf16ps as the hardware computes it (Intel SDM pseudo-code, checked on a Zen 5): per fp32 lane i,
//   t = acc[i] + a[2i+1] * b[2i+1], then t + a[2i] * b[2i], each rounded to nearest even (a product of two bf16
// is exact in fp32, so each step is one fused multiply-add); subnormal inputs read as zero and subnormal
// results flush to zero (DAZ, FTZ: MXCSR is not consulted). SIMDe 0.8.2 adds in another order and keeps
// subnormals, which changes results in the last bit and near the bottom of the range.
inline simde__m512 dpbf16_ps(simde__m512 acc, simde__m512i a, simde__m512i b) {
  float c[16];
  uint16_t x[32], y[32];
  std::memcpy(c, &acc, 64);
  std::memcpy(x, &a, 64);
  std::memcpy(y, &b, 64);
  for (int i = 0; i < 16; ++i) {
    const float t = f32_ftz(std::fma(bf16_daz(x[2 * i + 1]), bf16_daz(y[2 * i + 1]), f32_ftz(c[i])));
    c[i] = f32_ftz(std::fma(bf16_daz(x[2 * i]), bf16_daz(y[2 * i]), t));
  }
  simde__m512 r;
  std::memcpy(&r, c, 64);
  return r;
}

}  // namespace lowbit::cpu::emulation

#define _mm512_cvtepi8_epi32(a) ::lowbit::cpu::emulation::widen_bytes<int8_t>(a)
#define _mm512_cvtepu8_epi32(a) ::lowbit::cpu::emulation::widen_bytes<uint8_t>(a)
#define _mm512_maskz_loadu_epi8(k, p) ::lowbit::cpu::emulation::maskz_loadu_epi8(k, p)
#define _mm512_reduce_add_epi32(a) ::lowbit::cpu::emulation::reduce_add_epi32(a)
#else
#include <immintrin.h>
#endif

namespace lowbit::cpu::LOWBIT_VARIANT_NS {

// How far ahead of the packed weights being read the AVX-512 kernels ask for the cache line (software
// prefetch): the hardware prefetcher alone leaves a decode stream waiting on DRAM. Measured on a Zen 5 VM
// (2 threads, a16w4 M = 1, 4096 x 4096, three runs each): 1024 bytes 0.83x PyTorch's int4 op, 2048 about
// 0.9-1.1x, 4096 1.19-1.25x, 8192 worse again. (A prefetch past the end of a panel never faults.)
constexpr int kPrefetch = 4096;

// 32 bf16 values (16 pairs) from their bits: a vector cast natively; a copy between SIMDe's structs.
inline __m512bh as_bf16x32(__m512i v) {
#if defined(LOWBIT_SIMDE)
  __m512bh r;
  std::memcpy(&r, &v, sizeof r);
  return r;
#else
  return (__m512bh)v;
#endif
}

// acc + a[2j+1] * b[2j+1] + a[2j] * b[2j] per fp32 lane j (vdpbf16ps; subnormals read and written as zero).
inline __m512 dpbf16(__m512 acc, __m512i a, __m512i b) {
#if defined(LOWBIT_SIMDE)
  return ::lowbit::cpu::emulation::dpbf16_ps(acc, a, b);
#else
  return _mm512_dpbf16_ps(acc, as_bf16x32(a), as_bf16x32(b));
#endif
}

// acc + the 4 products of unsigned bytes of u and signed bytes of s per int32 lane (vpdpbusd, wrapping).
// Natively through inline assembly: GCC 12 does not tie the accumulator of _mm512_dpbusd_epi32 to its
// destination inside unrolled loops and copies every accumulator twice per step (seen in the disassembly).
inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
#if defined(LOWBIT_SIMDE)
  return _mm512_dpbusd_epi32(acc, u, s);
#else
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
#endif
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
