// Activation conversions (to_f32 / from_f32) of every variant: exact widening (bf16 subnormals read as
// zero), round to nearest even with ties to even checked exhaustively at every midpoint of bf16 and fp16, NaN
// stays NaN, overflow goes to Inf, vector bodies and scalar tails agree, nothing is written past n.
#define LOWBIT_TEST_MAIN
#include "util.h"

#include "cpu/kernels/generic/generic.h"

using namespace lowbit_test;
namespace gen = lowbit::cpu::generic;

namespace {

// Value of a half-precision bit pattern, computed independently of the kernels (finite patterns only).
double f16_value(uint16_t h) {
  const int exp = (h >> 10) & 31, mant = h & 1023;
  const double mag = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  return h & 0x8000 ? -mag : mag;
}

bool is_nan16(uint16_t h, ActDType t) {
  return t == ActDType::bf16 ? (h & 0x7f80) == 0x7f80 && (h & 0x7f) : (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

std::vector<uint16_t> from_f32(const KernelTable& kt, const std::vector<float>& src, ActDType t) {
  std::vector<uint16_t> out(src.size());
  kt.from_f32(src.data(), nullptr, out.data(), t, int64_t(src.size()));
  return out;
}

// Every positive finite pattern h of the 16-bit type and its successor h + 1 (after the largest finite one
// comes Inf, which rounding treats as the next value of the same spacing): their midpoint must round to the
// even one of the two, anything just off it to the nearer one.
void check_rounding(ActDType t, uint16_t max_finite) {
  auto value_of = [&](uint32_t h) -> double {
    if (t == ActDType::bf16) return h == 0x7f80u ? std::ldexp(1.0, 128) : double(gen::bf16_to_f32(uint16_t(h)));
    return h == 0x7c00u ? 65536.0 : f16_value(uint16_t(h));  // "Inf" continues the fp16 spacing of 32
  };
  std::vector<float> src;
  std::vector<uint16_t> want;
  for (uint32_t h = 0; h <= max_finite; ++h) {
    const float mid = float((value_of(h) + value_of(h + 1)) / 2);  // exact: one more bit than the 16-bit type
    const uint16_t even = uint16_t(h & 1 ? h + 1 : h);
    for (float sign : {1.f, -1.f}) {
      const uint16_t s = sign < 0 ? 0x8000 : 0;
      src.insert(src.end(), {sign * mid, sign * std::nextafter(mid, 0.f), sign * std::nextafter(mid, INFINITY)});
      want.insert(want.end(), {uint16_t(even | s), uint16_t(h | s), uint16_t((h + 1) | s)});
    }
  }
  src.push_back(NAN);
  src.push_back(-INFINITY);
  for (const KernelTable* kt : runnable_variants()) {
    const std::vector<uint16_t> got = from_f32(*kt, src, t);
    long bad = 0;
    for (size_t i = 0; i + 2 < src.size(); ++i)
      if (got[i] != want[i] && ++bad <= 5)
        CHECK(false, kt->name, ": ", src[i], " -> 0x", std::hex, got[i], ", expected 0x", want[i]);
    CHECK(is_nan16(got[src.size() - 2], t), kt->name, ": NaN did not stay NaN");
    CHECK(got.back() == (t == ActDType::bf16 ? 0xff80 : 0xfc00), kt->name, ": -Inf did not stay -Inf");
  }
}

}  // namespace

TEST(bf16_rounds_to_nearest_even_at_every_midpoint) { check_rounding(ActDType::bf16, 0x7f7f); }

TEST(f16_rounds_to_nearest_even_at_every_midpoint) { check_rounding(ActDType::f16, 0x7bff); }

TEST(widening_is_exact_for_every_16_bit_pattern) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = uint16_t(i);
  for (const KernelTable* kt : runnable_variants()) {
    std::vector<float> bf(65536), hf(65536);
    kt->to_f32(all.data(), ActDType::bf16, bf.data(), 65536);
    kt->to_f32(all.data(), ActDType::f16, hf.data(), 65536);
    for (uint32_t h = 0; h < 65536; ++h) {
      // subnormal bf16 reads as signed zero (api.h), everything else exactly
      const uint32_t want = (h & 0x7f80) == 0 ? (h & 0x8000) << 16 : h << 16;
      CHECK(bits(bf[h]) == want, kt->name, ": bf16 0x", std::hex, h);
      if (is_nan16(uint16_t(h), ActDType::f16)) {
        CHECK(std::isnan(hf[h]), kt->name, ": f16 NaN 0x", std::hex, h);
      } else if ((h & 0x7fff) == 0x7c00) {
        CHECK(std::isinf(hf[h]) && std::signbit(hf[h]) == bool(h & 0x8000), kt->name, ": f16 Inf 0x", std::hex, h);
      } else {
        CHECK(double(hf[h]) == f16_value(uint16_t(h)) && std::signbit(hf[h]) == bool(h & 0x8000), kt->name,
              ": f16 0x", std::hex, h, " -> ", hf[h]);
      }
    }
  }
}

// Lengths around the 8-lane vector width, with and without bias: every variant equals the generic one bit
// for bit (NaN excepted: only NaN-ness is promised) and writes exactly n elements.
TEST(tails_and_bias_match_generic_and_stay_in_bounds) {
  for (const KernelTable* kt : runnable_variants()) {
    for (ActDType t : {ActDType::f32, ActDType::bf16, ActDType::f16}) {
      for (int64_t n = 0; n <= 41; ++n) {
        for (bool with_bias : {false, true}) {
          const std::vector<float> src = random_floats(n, -300.f, 300.f), bias = random_floats(n);
          const float* b = with_bias ? bias.data() : nullptr;
          if (t == ActDType::f32) {
            Guarded<float> got(n, 0.f, 12345.f), want(n, 0.f, 12345.f);
            kt->from_f32(src.data(), b, got.get(), t, n);
            gen::from_f32(src.data(), b, want.get(), t, n);
            CHECK(std::memcmp(got.get(), want.get(), size_t(n) * 4) == 0, kt->name, " f32 n=", n);
            CHECK(got.guard_intact(), kt->name, " wrote past n=", n);
          } else {
            Guarded<uint16_t> got(n, 0, 0xabcd), want(n, 0, 0xabcd);
            kt->from_f32(src.data(), b, got.get(), t, n);
            gen::from_f32(src.data(), b, want.get(), t, n);
            CHECK(std::memcmp(got.get(), want.get(), size_t(n) * 2) == 0, kt->name, " 16-bit n=", n);
            CHECK(got.guard_intact(), kt->name, " wrote past n=", n);
            Guarded<float> wide(n, 0.f, 12345.f);
            kt->to_f32(got.get(), t, wide.get(), n);
            CHECK(wide.guard_intact(), kt->name, " to_f32 wrote past n=", n);
          }
        }
      }
    }
  }
}
