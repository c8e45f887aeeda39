// The AMX tile emulation (csrc/cpu/kernels/amx_emulation.h) on its own: against a scalar reference written
// per output element from the SDM's definitions, against hand-worked cases of the bf16 rounding order and
// denormal handling, for the load / store bounds and zeroing, and for the operand checks that fault on hardware.
// Where the CPU has AMX (and the OS grants tile data), also against the hardware on random tiles (amx_native.cpp).
// Built in every test build (no SIMDe needed), so scripts/hardware-check.sh compares it with the hardware on AMX
// machines.
#define LOWBIT_TEST_MAIN
#include "check.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>

#include <immintrin.h>  // first, as in the emulated kernels: the emulation replaces GCC's tile macros

#include "cpu/kernels/amx_emulation.h"

// amx_native.cpp: config, then C (+)= A x B with the real instruction ("bf16", "ssd", "usd") into c (16 x 64
// bytes); false when this CPU or OS has no AMX.
bool native_amx_dp(const char* op, const uint8_t* config, const uint8_t* a, const uint8_t* b, uint8_t* c);

namespace emu = lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation;

namespace {

std::mt19937 rng(11);

struct alignas(64) Config {
  uint8_t bytes[64] = {};
  Config& tile(int t, int rows, int colsb) {
    bytes[48 + t] = uint8_t(rows);
    std::memcpy(bytes + 16 + 2 * t, &colsb, 2);
    return *this;
  }
  Config() { bytes[0] = 1; }
};

float f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t u32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
uint16_t bf16(float f) { return uint16_t(u32(f) >> 16); }  // exact for the values used

// Reference: per output element, from the SDM's TDPBF16PS (even and odd sums from zero, one FMA per product,
// then c + (even + odd); DAZ on every input, FTZ on every result, round to nearest even).
float flush(float f) { return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.f, f) : f; }
float bf16_value(uint16_t h) { return flush(f32(uint32_t(h) << 16)); }

void reference_bf16(int M, int Kp, int N, const uint16_t* a, const uint16_t* b, float* c) {
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      float even = 0.f, odd = 0.f;
      for (int k = 0; k < Kp; ++k) {
        even = flush(std::fma(bf16_value(a[m * 32 + 2 * k]), bf16_value(b[k * 32 + 2 * n]), even));
        odd = flush(std::fma(bf16_value(a[m * 32 + 2 * k + 1]), bf16_value(b[k * 32 + 2 * n + 1]), odd));
      }
      c[m * 16 + n] = flush(flush(c[m * 16 + n]) + flush(even + odd));
    }
}

template <typename A>
void reference_bytes(int M, int K4, int N, const uint8_t* a, const uint8_t* b, int32_t* c) {
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      int64_t s = c[m * 16 + n];
      for (int k = 0; k < 4 * K4; ++k) s += int64_t(A(a[m * 64 + k])) * int8_t(b[(k / 4) * 64 + 4 * n + k % 4]);
      c[m * 16 + n] = int32_t(uint32_t(uint64_t(s)));  // wraps like the 32-bit adds
    }
}

// Runs C(tmm0) += A(tmm1) x B(tmm2) in the emulation: shapes M x 4Kp bytes, Kp x 4N bytes, M x 4N bytes.
void emulated_dp(const char* op, const Config& cfg, const uint8_t* a, const uint8_t* b, uint8_t* c) {
  _tile_loadconfig(cfg.bytes);
  _tile_loadd(0, c, 64);
  _tile_loadd(1, a, 64);
  _tile_loadd(2, b, 64);
  if (op[0] == 'b') _tile_dpbf16ps(0, 1, 2);
  else if (op[0] == 's') _tile_dpbssd(0, 1, 2);
  else _tile_dpbusd(0, 1, 2);
  _tile_stored(0, c, 64);
  _tile_release();
}

// random bf16 bits: normal numbers of mixed magnitude and sign, with some zeros, subnormals, and a few
// values whose products cancel
uint16_t random_bf16() {
  const int kind = int(rng() % 16);
  if (kind == 0) return 0;
  if (kind == 1) return uint16_t(rng() % 0x7f) | uint16_t(rng() % 2 << 15);  // subnormal (or zero)
  const float v = std::ldexp(float(int(rng() % 255) - 127) / 64.f, int(rng() % 12) - 6);
  return bf16(v);
}

struct Throw {
  static void handler(const char* what) { throw std::runtime_error(what); }
};

bool faults(void (*f)()) {
  emu::fault_handler() = Throw::handler;
  bool thrown = false;
  try {
    f();
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  emu::fault_handler() = nullptr;
  emu::release();
  return thrown;
}

}  // namespace

TEST(tdpbf16ps_matches_the_scalar_reference_on_random_shapes) {
  for (int trial = 0; trial < 200; ++trial) {
    const int M = 1 + int(rng() % 16), Kp = 1 + int(rng() % 16), N = 1 + int(rng() % 16);
    alignas(64) uint16_t a[16 * 32] = {}, b[16 * 32] = {};
    alignas(64) float c[16 * 16] = {}, want[16 * 16] = {};
    for (auto& v : a) v = random_bf16();
    for (auto& v : b) v = random_bf16();
    for (int i = 0; i < 256; ++i) c[i] = want[i] = float(int(rng() % 200) - 100) / 8.f;
    Config cfg;
    cfg.tile(0, M, 4 * N).tile(1, M, 4 * Kp).tile(2, Kp, 4 * N);
    reference_bf16(M, Kp, N, a, b, want);
    // the tile loads read rows of 64 bytes with stride 64; elements past a row's colsb are not read
    emulated_dp("bf16", cfg, reinterpret_cast<uint8_t*>(a), reinterpret_cast<uint8_t*>(b), reinterpret_cast<uint8_t*>(c));
    long bad = 0;
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 16; ++n) {
        if (m < M && n < N && u32(c[m * 16 + n]) != u32(want[m * 16 + n]) && ++bad <= 3)
          CHECK(false, "M=", M, " Kp=", Kp, " N=", N, " c[", m, "][", n, "] = ", c[m * 16 + n], ", expected ",
                want[m * 16 + n]);
      }
  }
}

TEST(tdpbf16ps_rounding_order_and_denormals) {
  // one row, one column, pairs (a0, a1) . (b0, b1) over k: even and odd sums are separate until the end
  auto one = [](float acc, std::initializer_list<float> a, std::initializer_list<float> b) {
    alignas(64) uint16_t ta[32] = {}, tb[16 * 32] = {};
    alignas(64) float c[16] = {acc};
    int k = 0;
    for (float v : a) ta[k++] = bf16(v);
    k = 0;
    for (float v : b) tb[(k / 2) * 32 + k % 2] = bf16(v), ++k;
    const int Kp = int(a.size() + 1) / 2;
    Config cfg;
    cfg.tile(0, 1, 4).tile(1, 1, 4 * Kp).tile(2, Kp, 4);
    emulated_dp("bf16", cfg, reinterpret_cast<uint8_t*>(ta), reinterpret_cast<uint8_t*>(tb), reinterpret_cast<uint8_t*>(c));
    return c[0];
  };
  const float e24 = std::ldexp(1.f, -24);
  // even sum 2^-24 + 2^-24 = 2^-23 (exact), added to 1: 1 + 2^-23 (one ulp); adding each to 1 in turn would
  // tie to 1 twice
  float r = one(1.f, {e24, 0.f, e24, 0.f}, {1.f, 0.f, 1.f, 0.f});
  CHECK(r == 1.f + 2 * e24, "1 + (2^-24 + 2^-24) = ", r);
  // even + odd first, then the accumulator: 1 + (2^-24 + 2^-24) again, through the two sums
  r = one(1.f, {e24, e24}, {1.f, 1.f});
  CHECK(r == 1.f + 2 * e24, "1 + (even 2^-24 + odd 2^-24) = ", r);
  // the accumulator comes last: 2^24 + (1 + 1) = 2^24 + 2 exactly; adding 1 to 2^24 twice would tie to 2^24
  r = one(0x1p24f, {1.f, 1.f}, {1.f, 1.f});
  CHECK(r == 0x1p24f + 2.f, "2^24 + (1 + 1) = ", r);
  // a subnormal bf16 input reads as zero
  r = one(0.f, {f32(0x00400000u), 0.f}, {1.f, 0.f});
  CHECK(r == 0.f, "subnormal x 1 = ", r);
  // a subnormal product is flushed: 2^-70 * 2^-70 = 2^-140
  r = one(0.f, {0x1p-70f, 0.f}, {0x1p-70f, 0.f});
  CHECK(r == 0.f && !std::signbit(r), "2^-140 flushed: ", r);
  // a subnormal accumulator reads as zero
  r = one(0x1p-130f, {1.f, 0.f}, {0.f, 0.f});
  CHECK(r == 0.f, "subnormal accumulator + 0 = ", r);
  // NaN and infinity propagate
  r = one(0.f, {INFINITY, 0.f}, {1.f, 0.f});
  CHECK(std::isinf(r), "inf x 1 = ", r);
  r = one(0.f, {INFINITY, 0.f}, {0.f, 0.f});
  CHECK(std::isnan(r), "inf x 0 = ", r);
}

TEST(tdpbssd_and_tdpbusd_match_the_scalar_reference_and_wrap) {
  for (int trial = 0; trial < 200; ++trial) {
    const int M = 1 + int(rng() % 16), K4 = 1 + int(rng() % 16), N = 1 + int(rng() % 16);
    alignas(64) uint8_t a[16 * 64], b[16 * 64];
    for (auto& v : a) v = uint8_t(rng());
    for (auto& v : b) v = uint8_t(rng());
    for (const char* op : {"ssd", "usd"}) {
      alignas(64) int32_t c[16 * 16], want[16 * 16];
      for (int i = 0; i < 256; ++i) c[i] = want[i] = int32_t(rng());  // near INT32 limits too: wraps
      if (trial % 8 == 0) c[0] = want[0] = INT32_MAX;
      Config cfg;
      cfg.tile(0, M, 4 * N).tile(1, M, 4 * K4).tile(2, K4, 4 * N);
      if (op[0] == 's') reference_bytes<int8_t>(M, K4, N, a, b, want);
      else reference_bytes<uint8_t>(M, K4, N, a, b, want);
      emulated_dp(op, cfg, a, b, reinterpret_cast<uint8_t*>(c));
      long bad = 0;
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n)
          if (c[m * 16 + n] != want[m * 16 + n] && ++bad <= 3)
            CHECK(false, op, " M=", M, " K4=", K4, " N=", N, " c[", m, "][", n, "] = ", c[m * 16 + n], ", expected ",
                  want[m * 16 + n]);
    }
  }
}

TEST(tile_loads_and_stores_touch_rows_x_colsb_only) {
  Config cfg;
  cfg.tile(3, 5, 12);  // 5 rows of 12 bytes
  alignas(64) uint8_t src[16 * 100], dst[16 * 100];
  for (auto& v : src) v = uint8_t(rng() | 1);
  std::memset(dst, 0xee, sizeof dst);
  _tile_loadconfig(cfg.bytes);
  _tile_loadd(3, src, 100);  // stride 100
  _tile_stored(3, dst, 100);
  bool ok = true;
  for (int r = 0; r < 16; ++r)
    for (int i = 0; i < 100; ++i) {
      const bool inside = r < 5 && i < 12;
      ok &= dst[r * 100 + i] == (inside ? src[r * 100 + i] : 0xee);
    }
  CHECK(ok, "store wrote exactly 5 rows x 12 bytes of what was loaded");
  // the bytes past colsb and the rows past `rows` hold zeros: seen through a wider tile's product
  const auto& s = emu::state();
  bool zero = true;
  for (int r = 0; r < 16; ++r)
    for (int i = 0; i < 64; ++i) zero &= (r < 5 && i < 12) || s.data[3][r][i] == 0;
  CHECK(zero, "the rest of the tile is zero after a load");
  _tile_zero(3);
  _tile_stored(3, dst, 100);
  CHECK(dst[0] == 0 && dst[4 * 100 + 11] == 0 && dst[12] == 0xee, "tilezero");
  // a new configuration zeroes every tile
  _tile_loadd(3, src, 100);
  _tile_loadconfig(cfg.bytes);
  _tile_stored(3, dst, 100);
  CHECK(dst[0] == 0, "ldtilecfg zeroes the tiles");
  _tile_release();
  CHECK(!emu::state().configured, "tilerelease returns to the init state");
}

TEST(shapes_the_hardware_refuses_fault) {
  CHECK(faults([] {
          alignas(64) uint8_t buf[1024] = {};
          _tile_loadd(0, buf, 64);  // nothing configured
        }), "load without a configuration");
  CHECK(faults([] {
          Config c;
          c.tile(0, 17, 64);
          _tile_loadconfig(c.bytes);
        }), "17 rows");
  CHECK(faults([] {
          Config c;
          c.tile(0, 16, 65);
          _tile_loadconfig(c.bytes);
        }), "65 bytes per row");
  CHECK(faults([] {
          Config c;
          c.bytes[0] = 2;
          _tile_loadconfig(c.bytes);
        }), "palette 2");
  CHECK(faults([] {
          Config c;
          c.tile(0, 16, 64).tile(1, 8, 64).tile(2, 16, 64);
          _tile_loadconfig(c.bytes);
          _tile_dpbf16ps(0, 1, 2);  // C rows 16 != A rows 8
        }), "C rows != A rows");
  CHECK(faults([] {
          Config c;
          c.tile(0, 16, 64).tile(1, 16, 64).tile(2, 8, 64);
          _tile_loadconfig(c.bytes);
          _tile_dpbssd(0, 1, 2);  // A dwords 16 != B rows 8
        }), "A columns != B rows");
  CHECK(faults([] {
          Config c;
          c.tile(0, 16, 32).tile(1, 16, 64).tile(2, 16, 64);
          _tile_loadconfig(c.bytes);
          _tile_dpbssd(0, 1, 2);  // C bytes 32 != B bytes 64
        }), "C row bytes != B row bytes");
  CHECK(faults([] {
          Config c;
          c.tile(0, 16, 64).tile(1, 16, 64);
          _tile_loadconfig(c.bytes);
          _tile_dpbssd(0, 1, 1);  // one tile twice
        }), "a tile named twice");
  CHECK(faults([] {
          Config c;
          c.tile(0, 16, 64).tile(1, 16, 64);
          _tile_loadconfig(c.bytes);
          _tile_dpbssd(0, 1, 2);  // tmm2 not configured
        }), "an unconfigured tile");
  CHECK(!faults([] {
          Config c;
          c.tile(0, 16, 64).tile(1, 16, 64).tile(2, 16, 64);
          _tile_loadconfig(c.bytes);
          _tile_dpbssd(0, 1, 2);
        }), "a valid product does not fault");
}

TEST(emulation_matches_the_hardware) {
  int compared = 0;
  for (int trial = 0; trial < 100; ++trial) {
    const int M = 1 + int(rng() % 16), Kp = 1 + int(rng() % 16), N = 1 + int(rng() % 16);
    alignas(64) uint8_t a[1024], b[1024], c[1024], hw[1024];
    const char* op = trial % 3 == 0 ? "bf16" : trial % 3 == 1 ? "ssd" : "usd";
    if (op[0] == 'b') {
      for (int i = 0; i < 512; ++i) {
        const uint16_t x = random_bf16(), y = random_bf16();
        std::memcpy(a + 2 * i, &x, 2);
        std::memcpy(b + 2 * i, &y, 2);
      }
      for (int i = 0; i < 256; ++i) {
        const float v = float(int(rng() % 200) - 100) / 8.f;
        std::memcpy(c + 4 * i, &v, 4);
      }
    } else {
      for (auto& v : a) v = uint8_t(rng());
      for (auto& v : b) v = uint8_t(rng());
      for (auto& v : c) v = uint8_t(rng());
    }
    Config cfg;
    cfg.tile(0, M, 4 * N).tile(1, M, 4 * Kp).tile(2, Kp, 4 * N);
    std::memcpy(hw, c, sizeof c);
    if (!native_amx_dp(op, cfg.bytes, a, b, hw)) break;
    emulated_dp(op, cfg, a, b, c);
    bool same = true;
    for (int m = 0; m < M; ++m) same &= std::memcmp(c + 64 * m, hw + 64 * m, size_t(4 * N)) == 0;
    CHECK(same, op, " M=", M, " Kp=", Kp, " N=", N, ": emulation differs from the hardware");
    ++compared;
  }
  if (compared == 0) std::printf("  (no AMX here, or the OS refused tile data: emulation checked against the reference only)\n");
}
