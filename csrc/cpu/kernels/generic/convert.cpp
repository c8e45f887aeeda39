// Portable dtype conversions. Written out bit by bit so that the generic variant needs no F16C and rounds
// exactly like the hardware paths (round to nearest even, NaN stays NaN, overflow goes to Inf).
#include "cpu/kernels/generic/generic.h"

#include <cmath>
#include <cstring>

namespace lowbit::cpu::generic {
namespace {

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

float bf16_to_f32(uint16_t h) { return float_of(uint32_t(h) << 16); }

uint16_t f32_to_bf16(float f) {
  uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN, keep sign
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // zero or subnormal: mant * 2^-24 is exact in fp32
    return float_of(sign | bits_of(float(mant) * 5.9604644775390625e-8f));
  }
  if (exp == 31) return float_of(sign | 0x7f800000u | (mant << 13));
  return float_of(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);   // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to Inf (65520 and up)
  if (a < 0x38800000u) {
    // fp16 subnormal range: the result is round(|f| * 2^24) ulps; the product is exact in fp32
    return uint16_t(sign | uint16_t(std::nearbyint(float_of(a) * 16777216.0f)));
  }
  uint32_t m = a - 0x38000000u;  // rebias the exponent from 127 to 15
  m += 0xfffu + ((m >> 13) & 1u);
  return uint16_t(sign | (m >> 13));
}

void to_f32(const void* src, ActDType dtype, float* dst, int64_t n) {
  switch (dtype) {
    case ActDType::f32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case ActDType::bf16: {
      auto s = static_cast<const uint16_t*>(src);
      // subnormal bf16 activations read as zero (keeping the sign), on every variant: vdpbf16ps does so and
      // cannot be told otherwise, so the CPU ops share its semantics (api.h, to_f32)
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i] & 0x7f80u ? s[i] : uint16_t(s[i] & 0x8000u));
      return;
    }
    case ActDType::f16: {
      auto s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
  }
}

void from_f32(const float* src, const float* bias, void* dst, ActDType dtype, int64_t n) {
  switch (dtype) {
    case ActDType::f32: {
      auto d = static_cast<float*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = bias ? src[i] + bias[i] : src[i];
      return;
    }
    case ActDType::bf16: {
      auto d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(bias ? src[i] + bias[i] : src[i]);
      return;
    }
    case ActDType::f16: {
      auto d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(bias ? src[i] + bias[i] : src[i]);
      return;
    }
  }
}

}  // namespace lowbit::cpu::generic
