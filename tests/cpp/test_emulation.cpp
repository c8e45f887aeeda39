// The emulation of x86_intrinsics.h (the intrinsics SIMDe 0.8.2 lacks or gets wrong) against the instructions'
// documented semantics on hand-worked cases, and against the hardware itself on random data where the CPU has
// the instructions (emulation_native.cpp). Built only with LOWBIT_EMULATED_ISAS, this file with the emulated
// variants' flags (AVX2 + SIMDe).
#define LOWBIT_TEST_MAIN
#include "check.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "cpu/kernels/x86_intrinsics.h"

void native_dpbf16(const float* acc, const uint16_t* a, const uint16_t* b, float* out);
void native_dpbusd(const int32_t* acc, const uint8_t* u, const int8_t* s, int32_t* out);
void native_widen(const uint8_t* bytes16, int32_t* signed_out, int32_t* unsigned_out);

namespace emu = lowbit::cpu::LOWBIT_VARIANT_NS;

namespace {

std::mt19937 rng(7);

uint16_t bf16_of(float f) {  // exact for the values used here
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t(u >> 16);
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

void emulated_dpbf16(const float* acc, const uint16_t* a, const uint16_t* b, float* out) {
  __m512 c;
  __m512i av, bv;
  std::memcpy(&c, acc, 64);
  std::memcpy(&av, a, 64);
  std::memcpy(&bv, b, 64);
  const __m512 r = emu::dpbf16(c, av, bv);
  std::memcpy(out, &r, 64);
}

// One lane: acc + a1 * b1 (the odd pair, first) + a0 * b0.
float lane(float acc, float a0, float b0, float a1, float b1) {
  float c[16] = {acc}, out[16];
  uint16_t a[32] = {bf16_of(a0), bf16_of(a1)}, b[32] = {bf16_of(b0), bf16_of(b1)};
  emulated_dpbf16(c, a, b, out);
  return out[0];
}

#define cpu_has(what) __builtin_cpu_supports(what)

}  // namespace

TEST(dpbf16_rounds_each_product_in_order_and_flushes_subnormals) {
  const float e24 = std::ldexp(1.f, -24);
  // odd product first, each sum rounded: 1 + 2^-24 ties to 1 twice (one rounding of the exact sum gives 1 + 2^-23)
  CHECK(lane(1.f, e24, 1.f, e24, 1.f) == 1.f, "1 + 2^-24 + 2^-24 = ", lane(1.f, e24, 1.f, e24, 1.f));
  // the odd product 2^-127 alone is subnormal: flushed before the even one is added
  const float r = lane(0.f, std::ldexp(1.f, -126), 1.f, std::ldexp(1.f, -127), 1.f);
  CHECK(r == std::ldexp(1.f, -126), "0 + 2^-127 + 2^-126 = ", r);
  // a subnormal bf16 input (0x0040) reads as zero
  float c[16] = {}, out[16];
  uint16_t a[32] = {0x0040}, b[32] = {bf16_of(1.f)};
  emulated_dpbf16(c, a, b, out);
  CHECK(out[0] == 0.f, "0x0040 x 1 = ", out[0]);
  // a subnormal accumulator reads as zero too
  CHECK(lane(std::ldexp(1.f, -130), 1.f, 1.f, 0.f, 0.f) == 1.f, "subnormal acc");
  // the other lanes are independent
  CHECK(out[1] == 0.f && out[15] == 0.f, "untouched lanes");
}

TEST(dpbf16_matches_the_hardware) {
  if (!cpu_has("avx512bf16")) {
    std::printf("  (no AVX512-BF16 here: hand-worked cases only)\n");
    return;
  }
  long bad = 0;
  for (int t = 0; t < 20000; ++t) {
    float acc[16], out_e[16], out_n[16];
    uint16_t a[32], b[32];
    for (int i = 0; i < 32; ++i) {
      // ordinary values, values near the bottom of the range (subnormal products and sums), exact ties
      const int kind = int(rng() % 4);
      const float v = std::ldexp(float(int(rng() % 255) - 127), kind == 0 ? -130 : kind == 1 ? -60 : int(rng() % 20) - 10);
      a[i] = bf16_of(v);
      b[i] = uint16_t(rng());  // any bit pattern but NaN (which the kernels never feed)
      if ((b[i] & 0x7f80) == 0x7f80) b[i] &= 0xbfff;
    }
    for (float& v : acc) v = std::ldexp(float(int(rng() % 2001) - 1000), int(rng() % 40) - 140);
    emulated_dpbf16(acc, a, b, out_e);
    native_dpbf16(acc, a, b, out_n);
    for (int i = 0; i < 16; ++i)
      if (bits(out_e[i]) != bits(out_n[i]) && !(std::isnan(out_e[i]) && std::isnan(out_n[i])) && ++bad <= 5)
        CHECK(false, "lane ", i, ": emulated ", out_e[i], " hardware ", out_n[i]);
  }
  CHECK(bad == 0, bad, " lanes differ");
}

TEST(dpbusd_wraps_like_the_hardware) {
  for (int t = 0; t < 2000; ++t) {
    int32_t acc[16], want[16];
    uint8_t u[64];
    int8_t s[64];
    for (auto& v : acc) v = int32_t(rng());  // near the int32 limits too: the sums wrap
    for (auto& v : u) v = uint8_t(rng());
    for (auto& v : s) v = int8_t(rng());
    for (int i = 0; i < 16; ++i) {
      uint32_t w = uint32_t(acc[i]);
      for (int j = 0; j < 4; ++j) w += uint32_t(int32_t(u[4 * i + j]) * int32_t(s[4 * i + j]));
      want[i] = int32_t(w);
    }
    __m512i a, uv, sv;
    std::memcpy(&a, acc, 64);
    std::memcpy(&uv, u, 64);
    std::memcpy(&sv, s, 64);
    int32_t got[16];
    const __m512i r = emu::dpbusd(a, uv, sv);
    std::memcpy(got, &r, 64);
    CHECK(std::memcmp(got, want, 64) == 0, "emulated vpdpbusd, case ", t);
    if (cpu_has("avx512vnni")) {
      int32_t hw[16];
      native_dpbusd(acc, u, s, hw);
      CHECK(std::memcmp(hw, want, 64) == 0, "hardware vpdpbusd disagrees with the documented semantics");
    }
  }
}

TEST(widening_masked_loads_and_reduction) {
  uint8_t bytes[64];
  for (auto& v : bytes) v = uint8_t(rng());
  __m128i v16;
  std::memcpy(&v16, bytes, 16);
  int32_t sx[16], zx[16];
  const __m512i s = _mm512_cvtepi8_epi32(v16), z = _mm512_cvtepu8_epi32(v16);
  std::memcpy(sx, &s, 64);
  std::memcpy(zx, &z, 64);
  for (int i = 0; i < 16; ++i) CHECK(sx[i] == int8_t(bytes[i]) && zx[i] == bytes[i], "widen ", i);
  if (cpu_has("avx512f")) {
    int32_t hs[16], hz[16];
    native_widen(bytes, hs, hz);
    CHECK(std::memcmp(hs, sx, 64) == 0 && std::memcmp(hz, zx, 64) == 0, "hardware widening differs");
  }
  for (int n = 0; n <= 64; ++n) {  // mask of the first n bytes; the others are zero and never read
    const __mmask64 k = n == 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
    const __m512i m = _mm512_maskz_loadu_epi8(k, bytes);
    uint8_t got[64];
    std::memcpy(got, &m, 64);
    for (int i = 0; i < 64; ++i) CHECK(got[i] == (i < n ? bytes[i] : 0), "maskz_loadu n=", n, " i=", i);
  }
  int32_t lanes[16];
  uint32_t sum = 0;
  for (int i = 0; i < 16; ++i) sum += uint32_t(lanes[i] = int32_t(rng()));
  __m512i l;
  std::memcpy(&l, lanes, 64);
  CHECK(_mm512_reduce_add_epi32(l) == int32_t(sum), "reduce_add wraps like the vector adds");
}
