// a16w8 and a16w4 with bf16 activations on AMX-BF16: TDPBF16PS multiplies a 16-row x 32-bf16 activation tile
// by a B tile of 16 k pairs x 16 columns into 16 x 16 fp32 sums: 8192 multiply-adds per instruction.
//
// The B operand: the int8 / int4 weights are widened at run time, per K-chunk of a panel pair, to bf16 pairs
// [k/2][16 columns][2] (exact: every int8 and int4 value is a bf16), once for all the rows of the call (up to
// kRowBlock), which is where tiles pay: the widening costs the same as in the AVX-512 driver, and each 32-row
// block then needs 4 tile products per 32 k instead of 64 vdpbf16ps.
//
// Semantics as the avx512_bf16 drivers: products exact, fp32 sums rounded to nearest even, subnormal bf16
// inputs and fp32 results flushed (amx_emulation.h); a16w8 applies the column scales to the finished sums, a16w4
// folds each group as scale * (x . q - zero * sum(x)) with the same FMAs.
//
// K tail (a16w8 only: a16w4 runs here only for groups of a multiple of 32, so K is one too): the last partial
// 32-k step of the activation rows is copied into a zero-padded scratch tile, and the widened weights are
// zero past K (an odd K pairs its last k with 0). N tail: panels are zero-padded to 16 columns by packing.
#include "cpu/kernels/amx/amx.h"
#include "cpu/kernels/avx512_bf16/bf16_pairs.h"
#include "cpu/kernels/linear.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

constexpr int64_t kStep = 32;       // k per tile product
constexpr int64_t kChunk = 512;     // k per widened chunk: 2 panels x 256 pairs x 64 bytes = 32 KiB (L1/L2)
constexpr int64_t kRowBlock = 256;  // rows sharing one widened chunk; their fp32 sums: 32 KiB
constexpr int64_t kStepBytes = kStep / 2 * 64;  // one B tile: 16 pairs x 64 bytes

using bf16_pairs::Buffer;
using bf16_pairs::min64;
using bf16_pairs::pair_bf16;
using bf16_pairs::widen_s8;

// a16w8: k in [k0, k0 + kc) of one panel ([16 scales][K][16 int8]) -> bf16 pairs out[steps * 16][16][2], zero
// past kc up to the whole last step.
void widen_a16w8(const uint8_t* panel, int64_t k0, int64_t kc, uint32_t* out) {
  const uint8_t* w = panel + kPanel * 4 + k0 * kPanel;
  const int64_t pairs = kc / 2, rows = (kc + kStep - 1) / kStep * (kStep / 2);
  int64_t p = 0;
  for (; p < pairs; ++p) {
    _mm512_store_si512(out + p * kPanel, pair_bf16(widen_s8(w + 2 * p * kPanel), widen_s8(w + (2 * p + 1) * kPanel)));
  }
  if (kc % 2) _mm512_store_si512(out + p * kPanel, pair_bf16(widen_s8(w + 2 * p * kPanel), _mm512_setzero_ps())), ++p;
  for (; p < rows; ++p) _mm512_store_si512(out + p * kPanel, _mm512_setzero_si512());
}

// a16w4: pairs [kg, kg + kc) of one group's nibble bytes (byte = q[k] | q[k + 1] << 4, kg and kc even, kc a
// multiple of 32) -> bf16 pairs. Each nibble indexes a table of the 16 bf16 values 0..15 (vpermw).
void widen_a16w4(const uint8_t* q, int64_t kc, uint32_t* out) {
  alignas(64) static const uint16_t bf16_of[32] = {0x0000, 0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0, 0x40e0,
                                                   0x4100, 0x4110, 0x4120, 0x4130, 0x4140, 0x4150, 0x4160, 0x4170};
  const __m512i table = _mm512_load_si512(bf16_of), low = _mm512_set1_epi32(0x0000000f),
                high = _mm512_set1_epi32(0x000f0000);
  for (int64_t p = 0; p < kc / 2; ++p) {
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + p * kPanel)));
    // word 2j = q[k] (low nibble), word 2j + 1 = q[k + 1] (high nibble, moved up by 12 bits)
    const __m512i idx = _mm512_or_si512(_mm512_and_si512(b, low), _mm512_and_si512(_mm512_slli_epi32(b, 12), high));
    _mm512_store_si512(out + p * kPanel, _mm512_permutexvar_epi16(idx, table));
  }
}

// The tile products of one block of rows (m0 + m1, TwoRows when m1 > 0) and NP panels over `steps` steps of a
// widened chunk b[j] (panel j), the activations x (row stride ldx bf16) from k = 0 of the chunk. A step that
// would read past the end of the rows (the K tail, last in the chunk) reads `tail` instead: the rows' last
// elements, zero-padded to 32, row stride 32.
template <bool TwoRows, int NP>
struct Block {
  static void zero() {
    _tile_zero(kC00);
    if constexpr (NP == 2) _tile_zero(kC01);
    if constexpr (TwoRows) {
      _tile_zero(kC10);
      if constexpr (NP == 2) _tile_zero(kC11);
    }
  }
  // c rows of 2 * 16 fp32 (panel j at column 16 j)
  static void load(const float* c) {
    constexpr int64_t ld = 2 * kPanel * 4;
    LOWBIT_TILE_LOADD(kC00, c, ld);
    if constexpr (NP == 2) LOWBIT_TILE_LOADD(kC01, c + kPanel, ld);
    if constexpr (TwoRows) {
      LOWBIT_TILE_LOADD(kC10, c + 16 * 2 * kPanel, ld);
      if constexpr (NP == 2) LOWBIT_TILE_LOADD(kC11, c + 16 * 2 * kPanel + kPanel, ld);
    }
  }
  static void store(float* c) {
    constexpr int64_t ld = 2 * kPanel * 4;
    _tile_stored(kC00, c, ld);
    if constexpr (NP == 2) _tile_stored(kC01, c + kPanel, ld);
    if constexpr (TwoRows) {
      _tile_stored(kC10, c + 16 * 2 * kPanel, ld);
      if constexpr (NP == 2) _tile_stored(kC11, c + 16 * 2 * kPanel + kPanel, ld);
    }
  }
  static void step(const uint16_t* a, int64_t lda, const uint8_t* b0, const uint8_t* b1) {
    LOWBIT_TILE_LOADD(kA0, a, lda * 2);
    if constexpr (TwoRows) LOWBIT_TILE_LOADD(kA1, a + 16 * lda, lda * 2);
    LOWBIT_TILE_LOADD(kB0, b0, 64);
    if constexpr (NP == 2) LOWBIT_TILE_LOADD(kB1, b1, 64);
    _tile_dpbf16ps(kC00, kA0, kB0);
    if constexpr (NP == 2) _tile_dpbf16ps(kC01, kA0, kB1);
    if constexpr (TwoRows) {
      _tile_dpbf16ps(kC10, kA1, kB0);
      if constexpr (NP == 2) _tile_dpbf16ps(kC11, kA1, kB1);
    }
  }
};

// Calls f.template operator()<TwoRows, NP>() for the block shape.
template <typename F>
void dispatch(bool two_rows, int np, const F& f) {
  if (two_rows && np == 2) f(Block<true, 2>{});
  else if (two_rows) f(Block<true, 1>{});
  else if (np == 2) f(Block<false, 2>{});
  else f(Block<false, 1>{});
}

// c[i][j * 16 + col] += s_j * (g[i][j * 16 + col] - z_j * xsum[i * ldxs]) (+ o_j * xsum[i * ldxs] with float
// offsets) for i < m, j < np: one a16w4 group folded, the FMAs of avx512_bf16's FoldGroup (A16W4Header).
void fold_group(const uint8_t* const* gp, int np, bool offsets, const float* g, const float* xsum, int64_t ldxs,
                int64_t m, float* c) {
  for (int j = 0; j < np; ++j) {
    const A16W4Header h(gp[j], offsets);
    for (int64_t i = 0; i < m; ++i) {
      float* ci = c + i * 2 * kPanel + j * kPanel;
      const __m512 acc = _mm512_loadu_ps(g + i * 2 * kPanel + j * kPanel);
      _mm512_storeu_ps(ci, h.fold(acc, _mm512_set1_ps(xsum[i * ldxs]), _mm512_loadu_ps(ci)));
    }
  }
}

// The rows of one row block [i0, i0 + m) of the panel pair: its K-chunks widened once and multiplied into every
// 32-row block. c: [m][32] fp32 results.
void a16w8_rows(const LinearArgs& a, const uint8_t* const* panel, int np, int64_t i0, int64_t m, Tiles& tiles,
                uint32_t* b, float* c) {
  const int64_t rows_b = kChunk / 2 * kPanel;  // uint32 per widened panel chunk
  for (int64_t k0 = 0; k0 < a.K; k0 += kChunk) {
    const int64_t kc = min64(kChunk, a.K - k0), full = kc / kStep, steps = (kc + kStep - 1) / kStep;
    for (int j = 0; j < np; ++j) widen_a16w8(panel[j], k0, kc, b + j * rows_b);
    for (int64_t r0 = 0; r0 < m; r0 += 32) {
      const int64_t mr = min64(32, m - r0), m0 = min64(16, mr), m1 = mr - m0;
      const uint16_t* x = a.x_bf16 + (i0 + r0) * a.K + k0;
      alignas(64) uint16_t tail[32][kStep];
      if (steps > full) {
        std::memset(tail, 0, sizeof tail);
        for (int64_t i = 0; i < mr; ++i) std::memcpy(tail[i], x + i * a.K + full * kStep, size_t(kc - full * kStep) * 2);
      }
      tiles.configure(int(m0), int(m1), np);
      float* cr = c + r0 * 2 * kPanel;
      dispatch(m1 > 0, np, [&](auto blk) {
        using B = decltype(blk);
        if (k0 > 0) B::load(cr);
        else B::zero();
        for (int64_t s = 0; s < full; ++s) {
          const auto* b0 = reinterpret_cast<const uint8_t*>(b) + s * kStepBytes;
          B::step(x + s * kStep, a.K, b0, b0 + rows_b * 4);
        }
        if (steps > full) {
          const auto* b0 = reinterpret_cast<const uint8_t*>(b) + full * kStepBytes;
          B::step(tail[0], kStep, b0, b0 + rows_b * 4);
        }
        B::store(cr);
      });
    }
  }
}

// a16w4 (group a multiple of 32): chunks of whole groups (or, for groups longer than a chunk, chunks inside one
// group, the raw sums kept in g between them); at each group end the C tiles go to f and are folded into c.
void a16w4_rows(const LinearArgs& a, const uint8_t* const* panel, int np, const float* sums, int64_t i0, int64_t m,
                Tiles& tiles, uint32_t* b, float* g, float* c) {
  const int64_t rows_b = kChunk / 2 * kPanel, groups = a.K / a.group;
  const int64_t group_bytes = a16w4_group_bytes(a.group, a.offsets), header = a16w4_header(a.offsets);
  for (int64_t i = 0; i < m * 2 * kPanel; i += 16) _mm512_storeu_ps(c + i, _mm512_setzero_ps());
  alignas(64) float f[32 * 2 * kPanel];
  for (int64_t k0 = 0; k0 < a.K;) {
    const int64_t g0 = k0 / a.group, kg = k0 - g0 * a.group;  // the chunk starts kg into group g0
    const int64_t kc = a.group <= kChunk ? min64(kChunk / a.group * a.group, a.K - k0) : min64(kChunk, a.group - kg);
    // widen: the chunk may hold several groups (each with its own header) or part of one
    for (int j = 0; j < np; ++j)
      for (int64_t k = k0; k < k0 + kc;) {
        const int64_t gi = k / a.group, in = k - gi * a.group, n = min64(k0 + kc - k, a.group - in);
        widen_a16w4(panel[j] + gi * group_bytes + header + in / 2 * kPanel, n,
                    b + j * rows_b + (k - k0) / 2 * kPanel);
        k += n;
      }
    for (int64_t r0 = 0; r0 < m; r0 += 32) {
      const int64_t mr = min64(32, m - r0), m0 = min64(16, mr), m1 = mr - m0;
      const uint16_t* x = a.x_bf16 + (i0 + r0) * a.K + k0;
      tiles.configure(int(m0), int(m1), np);
      dispatch(m1 > 0, np, [&](auto blk) {
        using B = decltype(blk);
        if (kg > 0) B::load(g + r0 * 2 * kPanel);  // a long group continued from the previous chunk
        else B::zero();
        for (int64_t s = 0; s < kc / kStep; ++s) {
          const auto* b0 = reinterpret_cast<const uint8_t*>(b) + s * kStepBytes;
          B::step(x + s * kStep, a.K, b0, b0 + rows_b * 4);
          const int64_t k_end = k0 + (s + 1) * kStep;
          if (k_end % a.group == 0) {  // a group ends: fold it and start the next from zero
            B::store(f);
            const int64_t gi = k_end / a.group - 1;
            const uint8_t* gp[2] = {panel[0] + gi * group_bytes, panel[np - 1] + gi * group_bytes};
            fold_group(gp, np, a.offsets, f, sums + (i0 + r0) * groups + gi, groups, mr, c + r0 * 2 * kPanel);
            B::zero();
          }
        }
        if ((k0 + kc) % a.group != 0) B::store(g + r0 * 2 * kPanel);  // the group goes on in the next chunk
      });
    }
    k0 += kc;
  }
}

void store_panels(const KernelTable& kt, const LinearArgs& a, const float* c, int np, int64_t p, int64_t i0,
                  int64_t m) {
  for (int j = 0; j < np; ++j) store_rows(kt, a, c + j * kPanel, 2 * kPanel, p + j, i0, m);
}

}  // namespace

void linear_a16w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.x_bf16 == nullptr || a.M < kAmxMinRows || !tiles_usable()) return parent_a16w8(kt, a, p0, p1);
  const int64_t panel_bytes = a16w8_panel_bytes(a.K);
  Buffer<uint32_t> b(2 * kChunk / 2 * kPanel + 16);  // + 16: room to align to 64 bytes
  uint32_t* b64 = reinterpret_cast<uint32_t*>((reinterpret_cast<uintptr_t>(b.p) + 63) & ~uintptr_t(63));
  Buffer<float> c(min64(a.M, kRowBlock) * 2 * kPanel);
  Tiles tiles;
  for (int64_t p = p0; p < p1; p += 2) {
    const int np = int(min64(2, p1 - p));
    const uint8_t* panel[2] = {a.packed + p * panel_bytes, a.packed + (p + np - 1) * panel_bytes};
    for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
      const int64_t m = min64(kRowBlock, a.M - i0);
      a16w8_rows(a, panel, np, i0, m, tiles, b64, c.p);
      for (int j = 0; j < np; ++j) {
        const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(panel[j]));  // the column scales
        for (int64_t i = 0; i < m; ++i) {
          float* ci = c.p + i * 2 * kPanel + j * kPanel;
          _mm512_storeu_ps(ci, _mm512_mul_ps(_mm512_loadu_ps(ci), s));
        }
      }
      store_panels(kt, a, c.p, np, p, i0, m);
    }
  }
}

void linear_a16w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.x_bf16 == nullptr || a.M < kAmxMinRows || a.group % kStep != 0 || !tiles_usable())
    return parent_a16w4(kt, a, p0, p1);
  const A16W4GroupSums group_sums(a);  // absorb the zero points (linear.h)
  const int64_t panel_bytes = a16w4_panel_bytes(a.K, a.group, a.offsets);
  Buffer<uint32_t> b(2 * kChunk / 2 * kPanel + 16);
  uint32_t* b64 = reinterpret_cast<uint32_t*>((reinterpret_cast<uintptr_t>(b.p) + 63) & ~uintptr_t(63));
  const int64_t rows = min64(a.M, kRowBlock);
  Buffer<float> c(rows * 2 * kPanel);
  Buffer<float> g(a.group > kChunk ? rows * 2 * kPanel : 0);  // raw sums of a group longer than a chunk
  Tiles tiles;
  for (int64_t p = p0; p < p1; p += 2) {
    const int np = int(min64(2, p1 - p));
    const uint8_t* panel[2] = {a.packed + p * panel_bytes, a.packed + (p + np - 1) * panel_bytes};
    for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
      const int64_t m = min64(kRowBlock, a.M - i0);
      a16w4_rows(a, panel, np, group_sums.data, i0, m, tiles, b64, g.p, c.p);
      store_panels(kt, a, c.p, np, p, i0, m);
    }
  }
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
