// a16w8 and a16w4 with bf16 activations on AVX512-BF16: vdpbf16ps multiplies 16 pairs of bf16 and adds both
// products to an fp32 lane, 32 multiply-adds per instruction (twice a 512-bit FMA). int8 and int4 weight
// values are exact in bf16, so every product is exact and only the fp32 accumulation rounds.
//
// Tiled path (M > kGemvRows): a K-chunk of two panels is converted once into bf16 pairs (k, k+1) per column
// and multiplied into every activation row, up to 12 rows x 2 panels per register tile, the activation pair
// read as one broadcast dword; the first row tile converts in registers and stores the pairs only when more
// row tiles follow. Decode: a16w4 converts nibble pairs in registers with three integer instructions
// (gemv_a16w4_rows below); a16w8 keeps the parent's FMA kernel (its int8 -> bf16 pair conversion costs as
// much as the FMAs it would save).
//
// Semantics: vdpbf16ps reads subnormal bf16 activations as zero and flushes subnormal partial sums to zero
// (x86_intrinsics.h); every CPU path reads subnormal bf16 activations as zero too (api.h, to_f32), so the
// paths agree up to the rounding of their sums.
#include "cpu/kernels/avx512_bf16/bf16.h"

#include "cpu/kernels/avx512_bf16/bf16_pairs.h"
#include "cpu/kernels/linear.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

// Rows per pass over a K-chunk: a chunk is converted once for up to this many rows (their fp32 results, 32 KiB,
// stay in L2). With 64 the conversion was repeated for M = 128 and cost about 5%.
constexpr int64_t kRowBlock = 256;
constexpr int64_t kChunk = 256;    // k per bf16 tile: 128 pairs x 2 panels x 64 bytes = 16 KiB
constexpr int kMaxRows = 12;       // 12 rows x 2 panels = 24 accumulators

using bf16_pairs::Buffer;
using bf16_pairs::min64;
using bf16_pairs::pair_bf16;
using bf16_pairs::widen_s8;

// Weight sources: get(p, w) fills w[0..NP) with the bf16 pairs (k, k+1), k = 2p, of NP panels (an odd last k
// pairs with 0).

// a16w8: k-major int8 rows of NP panels, converted in registers.
template <int NP>
struct ConvertS8 {
  const uint8_t* w[NP];  // row k0 of each panel
  int64_t kc;
  void get(int64_t p, __m512i* out) const {
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) {
      const uint8_t* r = w[j] + 2 * p * kPanel;
      _mm_prefetch(reinterpret_cast<const char*>(r) + kPrefetch, _MM_HINT_T0);
      out[j] = pair_bf16(widen_s8(r), 2 * p + 1 < kc ? widen_s8(r + kPanel) : _mm512_setzero_ps());
    }
  }
};

// a16w4: byte j of a k pair holds q[k][j] | q[k+1][j] << 4, already the pair wanted.
template <int NP>
struct ConvertS4 {
  const uint8_t* q[NP];  // the byte of k0, k0 + 1 in each panel's group
  void get(int64_t p, __m512i* out) const {
    const __m512i low4 = _mm512_set1_epi32(15);
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) {
      const uint8_t* r = q[j] + p * kPanel;
      _mm_prefetch(reinterpret_cast<const char*>(r) + kPrefetch, _MM_HINT_T0);
      const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r)));
      out[j] = pair_bf16(_mm512_cvtepi32_ps(_mm512_and_si512(b, low4)), _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4)));
    }
  }
};

// Pairs converted earlier by the first row tile: tile[p * NP + j].
template <int NP>
struct FromTile {
  const __m512i* t;
  void get(int64_t p, __m512i* out) const {
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) out[j] = _mm512_load_si512(t + p * NP + j);
  }
};

// What a register tile does with its sums acc[r][j] (row r, panel j). at(i) is the policy for a tile starting
// at row i of the block.

// out[r][j * 16 + c] (+)= acc: raw dot products, kept across chunks
template <int NP>
struct Accumulate {
  float* out;
  bool accumulate;
  Accumulate at(int64_t i) const { return {out + i * NP * kPanel, accumulate}; }
  __m512 init(int r, int j) const {
    return accumulate ? _mm512_loadu_ps(out + (r * NP + j) * kPanel) : _mm512_setzero_ps();
  }
  void finish(int r, int j, __m512 acc) const { _mm512_storeu_ps(out + (r * NP + j) * kPanel, acc); }
};

// c[r][j * 16 + col] += s_j * (acc - z_j * xsum[r]) (+ o_j * xsum[r] with float offsets): an a16w4 group
// folded straight from the registers
template <int NP>
struct FoldGroup {
  float* c;
  const float* xsum;  // this group's activation sum of row 0, then every ldxs floats
  int64_t ldxs;
  A16W4Header h[NP];
  FoldGroup at(int64_t i) const {
    FoldGroup f = *this;
    f.c += i * NP * kPanel;
    f.xsum += i * ldxs;
    return f;
  }
  __m512 init(int, int) const { return _mm512_setzero_ps(); }
  void finish(int r, int j, __m512 acc) const {
    float* cr = c + (r * NP + j) * kPanel;
    const __m512 xs = _mm512_set1_ps(xsum[r * ldxs]);
    _mm512_storeu_ps(cr, h[j].fold(acc, xs, _mm512_loadu_ps(cr)));
  }
};

// out[r][j * 16 + c] (+)= x[r][0:kc] . (pairs of panel j) for r < R, j < NP; x has row stride ldx (bf16
// elements) and starts at an even k. With `store`, the pairs also go to store[p * NP + j] for later row tiles.
template <int R, int NP, typename Src, typename Out>
void dot_tile(const Src& src, const uint16_t* x, int64_t ldx, int64_t kc, const Out& out, __m512i* store) {
  __m512 acc[R][NP];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j)
      acc[r][j] = out.init(r, j);
  const int64_t pairs = kc / 2;
  auto step = [&](int64_t p, auto x_pair) {
    __m512i w[NP];
    src.get(p, w);
    if (store)
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) _mm512_store_si512(store + p * NP + j, w[j]);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512i xv = _mm512_set1_epi32(x_pair(r));
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) acc[r][j] = dpbf16(acc[r][j], xv, w[j]);
    }
  };
  for (int64_t p = 0; p < pairs; ++p)
    step(p, [&](int r) {
      int32_t xx;
      std::memcpy(&xx, x + r * ldx + 2 * p, 4);  // (x[k], x[k + 1]) as one dword
      return xx;
    });
  if (kc % 2)  // the last k of an odd K: its pair is (x[k], 0), never reading past the row
    step(pairs, [&](int r) { return int32_t(x[r * ldx + kc - 1]); });
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) out.finish(r, j, acc[r][j]);
}

template <int NP, typename Src, typename Out>
void dot_tile_rows(int64_t rows, const Src& src, const uint16_t* x, int64_t ldx, int64_t kc, const Out& out,
                   __m512i* store) {
  switch (rows) {
#define LOWBIT_ROWS(R) \
  case R: return dot_tile<R, NP>(src, x, ldx, kc, out, store);
    LOWBIT_ROWS(1) LOWBIT_ROWS(2) LOWBIT_ROWS(3) LOWBIT_ROWS(4) LOWBIT_ROWS(5) LOWBIT_ROWS(6)
    LOWBIT_ROWS(7) LOWBIT_ROWS(8) LOWBIT_ROWS(9) LOWBIT_ROWS(10) LOWBIT_ROWS(11) LOWBIT_ROWS(12)
#undef LOWBIT_ROWS
  }
}

// out[i] (+)= x[i] . (the chunk's weights) for i < m, in balanced register tiles of at most kMaxRows rows.
// The first tile converts the weights in registers; only when more tiles follow does it also write them to
// `tile` for those (so a single tile, e.g. M = 8, never stores them).
template <int NP, typename Src, typename Out>
void dot_rows(const Src& src, const uint16_t* x, int64_t ldx, int64_t kc, const Out& out, int64_t m,
              __m512i* tile) {
  const int64_t tiles = (m + kMaxRows - 1) / kMaxRows;
  const int64_t r0 = tile_rows(m, tiles);
  dot_tile_rows<NP>(r0, src, x, ldx, kc, out, tiles > 1 ? tile : nullptr);
  for (int64_t t = 1, i = r0; t < tiles; ++t) {
    const int64_t r = tile_rows(m - i, tiles - t);
    dot_tile_rows<NP>(r, FromTile<NP>{tile}, x + i * ldx, ldx, kc, out.at(i), nullptr);
    i += r;
  }
}

template <int NP>
void a16w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p, __m512i* tile, float* c) {
  const int64_t panel_bytes = a16w8_panel_bytes(a.K);
  const uint8_t* panel[NP];
  for (int j = 0; j < NP; ++j) panel[j] = a.packed + (p + j) * panel_bytes;
  for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
    const int64_t m = min64(kRowBlock, a.M - i0);
    for (int64_t k0 = 0; k0 < a.K; k0 += kChunk) {
      const int64_t kc = min64(kChunk, a.K - k0);
      ConvertS8<NP> src;
      for (int j = 0; j < NP; ++j) src.w[j] = panel[j] + kPanel * 4 + k0 * kPanel;
      src.kc = kc;
      dot_rows<NP>(src, a.x_bf16 + i0 * a.K + k0, a.K, kc, Accumulate<NP>{c, k0 > 0}, m, tile);
    }
    for (int j = 0; j < NP; ++j) {
      const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(panel[j]));  // the panel's scales
      for (int64_t i = 0; i < m; ++i) {
        float* ci = c + (i * NP + j) * kPanel;
        _mm512_storeu_ps(ci, _mm512_mul_ps(_mm512_loadu_ps(ci), s));
      }
      store_rows(kt, a, c + j * kPanel, NP * kPanel, p + j, i0, m);
    }
  }
}

template <int NP>
void a16w4_panels(const KernelTable& kt, const LinearArgs& a, const float* sums, int64_t p, __m512i* tile,
                  float* gsum, float* c) {
  const int64_t groups = a.K / a.group;
  const int64_t panel_bytes = a16w4_panel_bytes(a.K, a.group, a.offsets);
  const int64_t group_bytes = a16w4_group_bytes(a.group, a.offsets), header = a16w4_header(a.offsets);
  for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
    const int64_t m = min64(kRowBlock, a.M - i0);
    for (int64_t i = 0; i < m * NP * kPanel; i += 16) _mm512_storeu_ps(c + i, _mm512_setzero_ps());
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* gp[NP];
      for (int j = 0; j < NP; ++j) gp[j] = a.packed + (p + j) * panel_bytes + g * group_bytes;
      FoldGroup<NP> fold{c, sums + i0 * groups + g, groups, {}};
      for (int j = 0; j < NP; ++j) fold.h[j] = A16W4Header(gp[j], a.offsets);
      if (a.group <= kChunk) {  // the usual groups (32..256): folded into c from the registers
        ConvertS4<NP> src;
        for (int j = 0; j < NP; ++j) src.q[j] = gp[j] + header;
        dot_rows<NP>(src, a.x_bf16 + i0 * a.K + g * a.group, a.K, a.group, fold, m, tile);
        continue;
      }
      // larger groups (per channel): raw sums over chunks inside the group (even k, as pairs need), then the fold
      for (int64_t kg = 0; kg < a.group; kg += kChunk) {
        const int64_t kc = min64(kChunk, a.group - kg);
        ConvertS4<NP> src;
        for (int j = 0; j < NP; ++j) src.q[j] = gp[j] + header + kg / 2 * kPanel;
        dot_rows<NP>(src, a.x_bf16 + i0 * a.K + g * a.group + kg, a.K, kc, Accumulate<NP>{gsum, kg > 0}, m, tile);
      }
      for (int64_t i = 0; i < m; ++i)
        for (int j = 0; j < NP; ++j) fold.finish(int(i), j, _mm512_loadu_ps(gsum + (i * NP + j) * kPanel));
    }
    for (int j = 0; j < NP; ++j) store_rows(kt, a, c + j * kPanel, NP * kPanel, p + j, i0, m);
  }
}

// Decode (M <= kGemvRows) of a16w4 with bf16 activations, straight from the packed panel. A byte b holding the
// nibble pair (q, q') becomes the bf16 pair (1 + q/16, 1 + q'/16) in three instructions: zero-extend to a
// dword, multiply by 0x8008 (b << 3 | b << 15: q lands in bits 3-6, q' in bits 19-22) and keep those bits
// under the bf16 exponent of 1.0 (0x3f80). Then sum_k x (1 + q/16) = sum(x) + (x . q) / 16, so per group
//   s * (x . q - z * sum(x)) = s * (16 * acc - (16 + z) * sum(x)),
// 16 * acc being exact. (The FMA path converts each nibble to fp32: 5 instructions per pair before its FMAs.)
template <int R, int NP>
void gemv_a16w4_rows(const uint8_t* const* panel, int64_t K, int64_t group, bool offsets, const uint16_t* x,
                     int64_t ldx, const float* xsum, int64_t ldxs, float* c) {
  const __m512i mul = _mm512_set1_epi32(0x8008), bits = _mm512_set1_epi32(0x00780078),
                one = _mm512_set1_epi32(0x3f803f80);
  const int64_t groups = K / group, group_bytes = a16w4_group_bytes(group, offsets), header = a16w4_header(offsets);
  __m512 out[R][NP];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) out[r][j] = _mm512_setzero_ps();
  auto pair_at = [&](const uint8_t* q) {
    _mm_prefetch(reinterpret_cast<const char*>(q) + kPrefetch, _MM_HINT_T0);
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    return _mm512_ternarylogic_epi32(_mm512_mullo_epi32(b, mul), bits, one, 0xea);  // (a & b) | c
  };
  auto x_pair = [&](int r, int64_t k) {
    int32_t xx;
    std::memcpy(&xx, x + r * ldx + k, 4);
    return _mm512_set1_epi32(xx);
  };
  // C chains per row and panel over alternate k pairs: one would wait on vdpbf16ps's latency (about 6 cycles
  // against 1-2 cycles of loads per pair at M = 1)
  constexpr int C = R == 1 ? 4 / NP : 2;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* gp[NP];
    const uint8_t* q[NP];
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) gp[j] = panel[j] + g * group_bytes, q[j] = gp[j] + header;
    const int64_t kg = g * group;
    __m512 acc[R][NP][C];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j)
#pragma GCC unroll 4
        for (int t = 0; t < C; ++t) acc[r][j][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 2 * C <= group; k += 2 * C) {
      __m512i w[NP][C];
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j)
#pragma GCC unroll 4
        for (int t = 0; t < C; ++t) w[j][t] = pair_at(q[j] + (k / 2 + t) * kPanel);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int t = 0; t < C; ++t) {
          const __m512i xv = x_pair(r, kg + k + 2 * t);
#pragma GCC unroll 2
          for (int j = 0; j < NP; ++j) acc[r][j][t] = dpbf16(acc[r][j][t], xv, w[j][t]);
        }
    }
    for (; k < group; k += 2) {  // group % (2 C) pairs left
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) {
        const __m512i w0 = pair_at(q[j] + k / 2 * kPanel);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r][j][0] = dpbf16(acc[r][j][0], x_pair(r, kg + k), w0);
      }
    }
#pragma GCC unroll 2
    for (int j = 0; j < NP; ++j) {
      const A16W4Header h(gp[j], offsets, 16.f);  // zero points 16 + z (16 with float offsets)
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        __m512 sum = acc[r][j][0];
#pragma GCC unroll 4
        for (int t = 1; t < C; ++t) sum = _mm512_add_ps(sum, acc[r][j][t]);
        const __m512 xs = _mm512_set1_ps(xsum[r * ldxs + g]);
        out[r][j] = h.fold(_mm512_mul_ps(sum, _mm512_set1_ps(16.f)), xs, out[r][j]);
      }
    }
  }
#pragma GCC unroll 2
  for (int j = 0; j < NP; ++j)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(c + (j * R + r) * kPanel, out[r][j]);
}

// c[j][r][16] for the NP panels and m rows
template <int NP>
void gemv_a16w4(int64_t m, const uint8_t* const* panel, int64_t K, int64_t group, bool offsets, const uint16_t* x,
                int64_t ldx, const float* xsum, int64_t ldxs, float* c) {
  switch (m) {
    case 1: return gemv_a16w4_rows<1, NP>(panel, K, group, offsets, x, ldx, xsum, ldxs, c);
    case 2: return gemv_a16w4_rows<2, NP>(panel, K, group, offsets, x, ldx, xsum, ldxs, c);
    case 3: return gemv_a16w4_rows<3, NP>(panel, K, group, offsets, x, ldx, xsum, ldxs, c);
    default: return gemv_a16w4_rows<4, NP>(panel, K, group, offsets, x, ldx, xsum, ldxs, c);
  }
}

}  // namespace

void linear_a16w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.x_bf16 == nullptr || a.M <= kGemvRows) return linear_a16w8_panels(kt, a, p0, p1);
  __m512i tile[kChunk / 2 * 2];
  Buffer<float> c(min64(a.M, kRowBlock) * 2 * kPanel);  // the tiled path only: decode allocates nothing
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) a16w8_panels<2>(kt, a, p, tile, c.p);
  if (p < p1) a16w8_panels<1>(kt, a, p, tile, c.p);
}

void linear_a16w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.x_bf16 == nullptr) return linear_a16w4_panels(kt, a, p0, p1);
  const int64_t groups = a.K / a.group;
  const A16W4GroupSums group_sums(a);  // absorb the zero points (linear.h)
  const float* sums = group_sums.data;
  if (a.M <= kGemvRows) {
    const int64_t panel_bytes = a16w4_panel_bytes(a.K, a.group, a.offsets);
    alignas(64) float c[2 * kGemvRows * kPanel];
    // Long panels two at a time (two weight streams per thread), short ones one at a time. Measured on Zen 5
    // (2 threads, M = 1, g = 128, interleaved in one process, cold weights), against PyTorch's int4 op:
    // K = 14336 (123 KiB panels) one panel 0.99-1.00x, two 1.10-1.13x; K = 4096 (35 KiB) one 0.99-1.01x,
    // two 0.93-0.96x.
    const int np = panel_bytes >= (int64_t(64) << 10) ? 2 : 1;
    for (int64_t p = p0; p < p1; p += np) {
      const int nj = int(min64(np, p1 - p));
      const uint8_t* panel[2] = {a.packed + p * panel_bytes, a.packed + (p + nj - 1) * panel_bytes};
      for (int64_t i0 = 0; i0 < a.M; i0 += kGemvRows) {
        const int64_t m = min64(kGemvRows, a.M - i0);
        if (nj == 2) gemv_a16w4<2>(m, panel, a.K, a.group, a.offsets, a.x_bf16 + i0 * a.K, a.K, sums + i0 * groups, groups, c);
        else gemv_a16w4<1>(m, panel, a.K, a.group, a.offsets, a.x_bf16 + i0 * a.K, a.K, sums + i0 * groups, groups, c);
        for (int j = 0; j < nj; ++j) store_rows(kt, a, c + j * m * kPanel, kPanel, p + j, i0, m);
      }
    }
    return;
  }
  __m512i tile[kChunk / 2 * 2];
  // the raw dot products of a group so far, for groups longer than a chunk (per channel) only
  Buffer<float> gsum(a.group > kChunk ? min64(a.M, kRowBlock) * 2 * kPanel : 0);
  Buffer<float> c(min64(a.M, kRowBlock) * 2 * kPanel);
  int64_t p = p0;
  for (; p + 2 <= p1; p += 2) a16w4_panels<2>(kt, a, sums, p, tile, gsum.p, c.p);
  if (p < p1) a16w4_panels<1>(kt, a, sums, p, tile, gsum.p, c.p);
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
