// The AMX variant (Sapphire Rapids and newer Xeons): tile kernels for the rows where tiles pay, over the
// avx512_bf16 variant, whose drivers still run decode-sized calls, non-bf16 activations and the shapes tiles do
// not fit. Built natively (-mamx-*) or, as amx-emu, with SIMDe for the AVX-512 parts and amx_emulation.h for
// the tiles (LOWBIT_VARIANT_NS differs between the two builds).
//
// Tiles used by every kernel (one shape per call of configure()): a block of up to 32 rows x 2 panels,
//   C: tmm0 (rows 0-15, panel 0), tmm1 (rows 0-15, panel 1), tmm2 (rows 16-31, panel 0), tmm3 (rows 16-31, panel 1)
//   A: tmm4 (rows 0-15), tmm5 (rows 16-31)     B: tmm6 (panel 0), tmm7 (panel 1)
// A rows hold 64 bytes of one activation row (32 bf16 or 64 int8 k); a B row holds 16 columns x one k pair
// (bf16) or x 4 k (int8): the VNNI order, 64 bytes, 16 rows. C rows are 16 fp32 or int32 columns.
#pragma once

#include "cpu/kernels/api.h"
#include "cpu/kernels/avx512_vnni/a16w4_header.h"
#include "cpu/kernels/x86_intrinsics.h"

#if defined(LOWBIT_SIMDE)
#include "cpu/kernels/amx_emulation.h"
#endif

namespace lowbit::cpu::LOWBIT_VARIANT_NS {

// Rows from which the tile drivers run; fewer go to the parent's drivers (README "AMX": the estimate behind it).
constexpr int64_t kAmxMinRows = kGemvRows + 1;

// Tile numbers as macros: GCC's tile intrinsics paste them into the instruction text (%tmm<n>), so they must
// reach the intrinsic as literals.
#define kC00 0
#define kC01 1
#define kC10 2
#define kC11 3
#define kA0 4
#define kA1 5
#define kB0 6
#define kB1 7

// Tile loads behind a compiler barrier: GCC 12's _tile_loadd asm does not declare that it reads memory, so the
// stores of the data it loads (widened weights, zero-padded tails) could otherwise be moved after it.
// (_tile_stored declares its write.)
#define LOWBIT_TILE_LOADD(t, base, stride)  \
  do {                                      \
    __asm__ volatile("" ::: "memory");      \
    _tile_loadd(t, base, stride);           \
  } while (0)

// The 64-byte LDTILECFG operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 0, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

// The tiles of one thread: configured for a block of m0 + m1 rows (m0 <= 16, m1 <= 16, m1 = 0: one row tile)
// and np (1 or 2) panels, reloaded only when the shape changes; released when it goes out of scope.
class Tiles {
 public:
  Tiles() = default;
  Tiles(const Tiles&) = delete;
  Tiles& operator=(const Tiles&) = delete;
  ~Tiles();
  void configure(int m0, int m1, int np);

 private:
  TileConfig current_;
};

// Whether this process may use tile data: asks the OS once (arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); when refused, logs one line and returns false for good, and the drivers run their
// parent's kernels. The emulation needs no permission (it grants it, unless the test-only variable
// LOWBIT_AMX_EMULATE_REFUSAL=1 asks it to play a refusing OS).
bool tiles_usable();

// The parent's drivers (avx512_bf16 or its twin), kept by table.cpp before it overrides them.
extern LinearDriver parent_a16w8, parent_a16w4, parent_da8w8;

void linear_a16w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
void linear_a16w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
void linear_da8w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
