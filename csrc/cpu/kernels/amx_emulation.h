// A scalar emulation of the AMX tile intrinsics the amx variant uses, for its emulated twin (amx-emu) and the
// tests only: no compiler or SIMD library emulates AMX, and no machine this project is tested on has it.
//
// Written from the instruction pages of the Intel SDM (LDTILECFG, TILELOADD/TILELOADDT1, TILESTORED,
// TILEZERO, TILERELEASE, TDPBF16PS, TDPBSSD, TDPBUSD), palette 1: 8 tiles of at most 16 rows x 64 bytes.
// What the pseudo-code says, this does:
// - loads and stores touch exactly rows x colsb bytes per tile (so AddressSanitizer sees what hardware reads);
//   a load zeroes the bytes of a row past colsb and the rows past `rows`;
// - TDPBSSD / TDPBUSD: per int32 element, c + four byte products (sign- or zero-extended), wrapping;
// - TDPBF16PS: per output row, two fp32 sums over k (even and odd bf16 products) start at 0 and each product is
//   added with one FMA; then the two sums are added and that sum is added to the destination. Every step
//   rounds to nearest even, reads subnormal inputs as zero and flushes subnormal results (DAZ = FTZ = 1;
//   MXCSR is neither read nor written);
// - the operand checks that raise #UD or #GP on hardware (shapes that do not fit, unconfigured tiles, one
//   tile named twice) call fault(), which aborts with a message, so a kernel shape bug fails every test run.
//   Where the SDM leaves a case open (a tile with rows but no columns), the emulation refuses it: stricter
//   than hardware is safe, looser is not.
// The hardware's internal order of the bf16 sums is not otherwise documented; the kernels' error bounds do not
// depend on it (at most 16 + 2 roundings per instruction, fewer than the K roundings they budget for).
//
// Per-thread state, like the tile registers. Included only by code built with LOWBIT_SIMDE (and its test).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation {

constexpr int kTiles = 8, kMaxRows = 16, kBytesPerRow = 64;

struct State {
  bool configured = false;
  uint8_t start_row = 0;
  uint8_t rows[kTiles] = {};
  uint16_t colsb[kTiles] = {};
  alignas(64) uint8_t data[kTiles][kMaxRows][kBytesPerRow] = {};
};

inline State& state() {
  static thread_local State s;
  return s;
}

// What a #UD / #GP does to the program: by default a message and abort(); tests may install a handler that
// throws, to check that a bad shape is caught.
using FaultHandler = void (*)(const char* what);
inline FaultHandler& fault_handler() {
  static FaultHandler h = nullptr;
  return h;
}
inline void fault(const char* what) {
  if (FaultHandler h = fault_handler()) h(what);
  std::fprintf(stderr, "AMX emulation: the hardware would fault here: %s\n", what);
  std::abort();
}

inline uint16_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// LDTILECFG: byte 0 palette, byte 1 start_row, bytes 2-15 reserved (0), bytes 16-47 colsb[16] (u16),
// bytes 48-63 rows[16]. Palette 0 returns to the initial state; palette 1 zeroes every tile.
inline void loadconfig(const void* config) {
  const auto* c = static_cast<const uint8_t*>(config);
  State& s = state();
  if (c[0] == 0) {
    s = State{};
    return;
  }
  if (c[0] != 1) fault("LDTILECFG: palette other than 0 or 1");
  for (int i = 2; i < 16; ++i)
    if (c[i] != 0) fault("LDTILECFG: reserved byte not zero");
  if (c[1] >= kMaxRows) fault("LDTILECFG: start_row past the last row");
  State n;
  for (int t = 0; t < 16; ++t) {
    const uint16_t colsb = u16_at(c + 16 + 2 * t);
    const uint8_t rows = c[48 + t];
    if (t >= kTiles) {
      if (colsb != 0 || rows != 0) fault("LDTILECFG: tile past tmm7 configured");
      continue;
    }
    if (rows > kMaxRows || colsb > kBytesPerRow) fault("LDTILECFG: tile larger than 16 rows x 64 bytes");
    if ((rows == 0) != (colsb == 0)) fault("LDTILECFG: tile with rows but no columns, or columns but no rows");
    n.rows[t] = rows;
    n.colsb[t] = colsb;
  }
  n.configured = true;
  n.start_row = c[1];
  s = n;
}

inline void check_tile(int t, const char* what) {
  const State& s = state();
  if (!s.configured) fault(what);
  if (t < 0 || t >= kTiles || s.rows[t] == 0) fault(what);
}

// TILELOADD / TILELOADDT1 (the hint changes nothing the program sees)
inline void loadd(int t, const void* base, int64_t stride) {
  check_tile(t, "TILELOADD: tile not configured");
  State& s = state();
  for (int r = s.start_row; r < s.rows[t]; ++r) {
    std::memset(s.data[t][r], 0, kBytesPerRow);
    std::memcpy(s.data[t][r], static_cast<const uint8_t*>(base) + r * stride, s.colsb[t]);
  }
  for (int r = s.rows[t]; r < kMaxRows; ++r) std::memset(s.data[t][r], 0, kBytesPerRow);
  s.start_row = 0;
}

inline void stored(int t, void* base, int64_t stride) {
  check_tile(t, "TILESTORED: tile not configured");
  State& s = state();
  for (int r = s.start_row; r < s.rows[t]; ++r)
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, s.data[t][r], s.colsb[t]);
  s.start_row = 0;
}

inline void zero(int t) {
  check_tile(t, "TILEZERO: tile not configured");
  std::memset(state().data[t], 0, sizeof state().data[t]);
}

inline void release() { state() = State{}; }

// The operand checks common to the dot products (#UD): configured, distinct, and shapes that multiply:
// C rows = A rows, A's dwords per row = B's rows, C's row bytes = B's row bytes, all multiples of 4 bytes.
inline void check_dp(int c, int a, int b, const char* what) {
  check_tile(c, what);
  check_tile(a, what);
  check_tile(b, what);
  const State& s = state();
  if (c == a || c == b || a == b) fault(what);
  if (s.colsb[c] % 4 || s.colsb[a] % 4 || s.colsb[b] % 4) fault(what);
  if (s.rows[c] != s.rows[a] || s.colsb[a] / 4 != s.rows[b] || s.colsb[c] != s.colsb[b]) fault(what);
}

template <typename A, typename B>
inline void dp_bytes(int c, int a, int b) {
  State& s = state();
  for (int m = 0; m < s.rows[c]; ++m) {
    uint32_t out[16];
    std::memcpy(out, s.data[c][m], 64);
    for (int k = 0; k < s.colsb[a] / 4; ++k)
      for (int n = 0; n < s.colsb[c] / 4; ++n) {
        int32_t sum = 0;  // four products of bytes: |sum| <= 4 * 255 * 128, no overflow
        for (int i = 0; i < 4; ++i) {
          A x;
          B y;
          std::memcpy(&x, &s.data[a][m][4 * k + i], 1);
          std::memcpy(&y, &s.data[b][k][4 * n + i], 1);
          sum += int32_t(x) * int32_t(y);
        }
        out[n] += uint32_t(sum);  // wraps like the hardware's 32-bit add
      }
    std::memset(s.data[c][m], 0, 64);
    std::memcpy(s.data[c][m], out, s.colsb[c]);
  }
  s.start_row = 0;
}

inline void dpbssd(int c, int a, int b) {
  check_dp(c, a, b, "TDPBSSD: bad operands");
  dp_bytes<int8_t, int8_t>(c, a, b);
}

inline void dpbusd(int c, int a, int b) {
  check_dp(c, a, b, "TDPBUSD: bad operands");
  dp_bytes<uint8_t, int8_t>(c, a, b);
}

inline float daz_bf16(uint16_t h) {  // make_fp32 with denormals read as zero
  const uint32_t u = uint32_t((h & 0x7f80u) ? h : h & 0x8000u) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float ftz(float f) {  // also used for DAZ of fp32 inputs: a subnormal becomes a signed zero
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
  std::memcpy(&f, &u, 4);
  return f;
}

inline void dpbf16ps(int c, int a, int b) {
  check_dp(c, a, b, "TDPBF16PS: bad operands");
  State& s = state();
  for (int m = 0; m < s.rows[c]; ++m) {
    float even[16] = {}, odd[16] = {};
    for (int k = 0; k < s.colsb[a] / 4; ++k)
      for (int n = 0; n < s.colsb[c] / 4; ++n) {
        const float a0 = daz_bf16(u16_at(&s.data[a][m][4 * k])), a1 = daz_bf16(u16_at(&s.data[a][m][4 * k + 2]));
        const float b0 = daz_bf16(u16_at(&s.data[b][k][4 * n])), b1 = daz_bf16(u16_at(&s.data[b][k][4 * n + 2]));
        even[n] = ftz(std::fma(a0, b0, even[n]));
        odd[n] = ftz(std::fma(a1, b1, odd[n]));
      }
    float out[16];
    std::memcpy(out, s.data[c][m], 64);
    for (int n = 0; n < s.colsb[c] / 4; ++n) out[n] = ftz(ftz(out[n]) + ftz(even[n] + odd[n]));
    std::memset(s.data[c][m], 0, 64);
    std::memcpy(s.data[c][m], out, s.colsb[c]);
  }
  s.start_row = 0;
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation

// GCC's <immintrin.h> (reached through SIMDe) defines these names as macros or inline functions whenever it
// targets x86-64; the emulation replaces them for the code that includes this header.
#undef _tile_loadd
#undef _tile_stream_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbf16ps
#undef _tile_dpbssd
#undef _tile_dpbusd
#define _tile_loadconfig(config) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::loadconfig(config)
#define _tile_release() ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::release()
#define _tile_loadd(t, base, stride) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::loadd(t, base, stride)
#define _tile_stream_loadd(t, base, stride) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::loadd(t, base, stride)
#define _tile_stored(t, base, stride) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::stored(t, base, stride)
#define _tile_zero(t) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::zero(t)
#define _tile_dpbf16ps(c, a, b) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::dpbf16ps(c, a, b)
#define _tile_dpbssd(c, a, b) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::dpbssd(c, a, b)
#define _tile_dpbusd(c, a, b) ::lowbit::cpu::LOWBIT_VARIANT_NS::amx_emulation::dpbusd(c, a, b)
