// da8w8 on AMX-INT8: TDPBSSD multiplies a 16-row x 64-byte tile of quantized activations (signed) by a
// 16 x 64-byte tile of weights (signed) into 16 x 16 int32 sums: 16384 multiply-adds per instruction.
//
// The B operand is the packed da8w8 panel as it is ([K4/4][16 columns][4 k], api.h): each 64-byte row is one
// group of 4 k for the 16 columns, the VNNI order a B tile wants, so weights go from memory to tiles with no
// conversion. Signed x signed needs no compensation (the AVX-512 kernels' vpdpbusd is unsigned x signed and
// shifts the activations by 128; the column sums in the panel are there for them). int32 sums are exact
// (K <= kMaxK8), so the result is the parent's bit for bit.
//
// K tail: K4 is a multiple of 4 but not of 64; the last K4 % 64 bytes of the activation rows and the last
// (K4 % 64) / 4 rows of the panels are copied into zero-padded scratch tiles (reading them in place would read
// past the rows and past the panel). N tail: panels are zero-padded to 16 columns by packing.
#include "cpu/kernels/amx/amx.h"
#include "cpu/kernels/linear.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

constexpr int64_t kStep = 64;  // k per tile product

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// acc[r][j * 16 + c] = x[r] . w_j[:, c] for the m0 + m1 rows (m1 = 0: one row tile) and NP panels.
// x: rows of K4 bytes; w[j]: panel j's weights; tail_x / tail_w: the zero-padded last step, when K4 % 64 != 0.
template <bool TwoRows, int NP>
void block(const int8_t* x, int64_t K4, const int8_t* const* w, const int8_t* tail_x, const int8_t* tail_w,
           int32_t* acc) {
  _tile_zero(kC00);
  if constexpr (NP == 2) _tile_zero(kC01);
  if constexpr (TwoRows) {
    _tile_zero(kC10);
    if constexpr (NP == 2) _tile_zero(kC11);
  }
  auto step = [&](const int8_t* a, int64_t lda, const int8_t* b0, const int8_t* b1) {
    LOWBIT_TILE_LOADD(kA0, a, lda);
    if constexpr (TwoRows) LOWBIT_TILE_LOADD(kA1, a + 16 * lda, lda);
    LOWBIT_TILE_LOADD(kB0, b0, 64);
    if constexpr (NP == 2) LOWBIT_TILE_LOADD(kB1, b1, 64);
    _tile_dpbssd(kC00, kA0, kB0);
    if constexpr (NP == 2) _tile_dpbssd(kC01, kA0, kB1);
    if constexpr (TwoRows) {
      _tile_dpbssd(kC10, kA1, kB0);
      if constexpr (NP == 2) _tile_dpbssd(kC11, kA1, kB1);
    }
  };
  const int64_t full = K4 / kStep;
  for (int64_t s = 0; s < full; ++s)  // B rows of step s: the panel's 64-byte rows 16 s ...
    step(x + s * kStep, K4, w[0] + s * kStep * kPanel, w[NP - 1] + s * kStep * kPanel);
  if (K4 % kStep) step(tail_x, kStep, tail_w, tail_w + kStep * kPanel);
  constexpr int64_t ld = 2 * kPanel * 4;  // acc rows: 32 int32
  _tile_stored(kC00, acc, ld);
  if constexpr (NP == 2) _tile_stored(kC01, acc + kPanel, ld);
  if constexpr (TwoRows) {
    _tile_stored(kC10, acc + 16 * 2 * kPanel, ld);
    if constexpr (NP == 2) _tile_stored(kC11, acc + 16 * 2 * kPanel + kPanel, ld);
  }
}

}  // namespace

void linear_da8w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.M < kAmxMinRows || !tiles_usable()) return parent_da8w8(kt, a, p0, p1);
  const int64_t K4 = round_up4(a.K), panel_bytes = da8w8_panel_bytes(a.K), tail = K4 % kStep;
  alignas(64) int8_t tail_w[2][16][kStep];   // the last step of each panel, zero-padded
  alignas(64) int8_t tail_x[32][kStep];      // the last step of a block's rows, zero-padded
  alignas(64) int32_t acc[32 * 2 * kPanel];  // [row][panel * 16 + column]
  alignas(64) float c[32 * kPanel];
  Tiles tiles;
  for (int64_t p = p0; p < p1; p += 2) {
    const int np = int(min64(2, p1 - p));
    const uint8_t* panel[2] = {a.packed + p * panel_bytes, a.packed + (p + np - 1) * panel_bytes};
    const int8_t* w[2];
    for (int j = 0; j < 2; ++j) {
      w[j] = reinterpret_cast<const int8_t*>(panel[j] + kPanel * 8);
      if (tail) {
        std::memset(tail_w[j], 0, sizeof tail_w[j]);
        std::memcpy(tail_w[j], w[j] + (K4 - tail) * kPanel, size_t(tail * kPanel));
      }
    }
    for (int64_t i0 = 0; i0 < a.M; i0 += 32) {
      const int64_t m = min64(32, a.M - i0), m0 = min64(16, m), m1 = m - m0;
      const int8_t* x = a.xq + i0 * K4;
      if (tail) {
        std::memset(tail_x, 0, sizeof tail_x);
        for (int64_t i = 0; i < m; ++i) std::memcpy(tail_x[i], x + i * K4 + K4 - tail, size_t(tail));
      }
      tiles.configure(int(m0), int(m1), np);
      if (m1 && np == 2) block<true, 2>(x, K4, w, tail_x[0], tail_w[0][0], acc);
      else if (m1) block<true, 1>(x, K4, w, tail_x[0], tail_w[0][0], acc);
      else if (np == 2) block<false, 2>(x, K4, w, tail_x[0], tail_w[0][0], acc);
      else block<false, 1>(x, K4, w, tail_x[0], tail_w[0][0], acc);
      for (int j = 0; j < np; ++j) {
        const auto* ws = reinterpret_cast<const float*>(panel[j]);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t col = 0; col < kPanel; ++col)  // the parent's order: float(acc) * x_scale * w_scale
            c[i * kPanel + col] = float(acc[i * 2 * kPanel + j * kPanel + col]) * a.x_scale[i0 + i] * ws[col];
        store_rows(kt, a, c, kPanel, p + j, i0, m);
      }
    }
  }
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
