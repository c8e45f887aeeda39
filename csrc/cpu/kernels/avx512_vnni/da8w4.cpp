// da8w4 with vpdpbusd: register tiles of up to 12 rows x 2 panels (prefill) or up to 4 rows x 1 panel (decode).
//
// A 64-byte weight row holds 4 k of 16 columns in its low nibbles and the next 4 k in its high nibbles
// (api.h), so AND 0x0F and (>> 4) AND 0x0F give vpdpbusd's unsigned operand directly; the signed operand is the
// int8 activations, the same 4 bytes for all 16 columns: broadcast once per row and k-step and shared by the
// tile's panels (measured: 20% faster at M = 32 than a {1to16} memory operand per vpdpbusd), or straight from
// memory when the tile has one panel. No compensation term: the nibbles are unsigned already. Per group,
// d = acc - z * xsum in int32 (exact: api.h, kMaxGroupDA8W4), then c += s * float(d) in fp32, c kept in memory
// (L1) across groups. (The same difference in fp32, exact below g = 8800, measured no faster.)
//
// Decode (M <= 4) streams one panel at a time from DRAM with a software prefetch kPrefetch bytes ahead; the low
// and high nibbles then go to separate accumulators so that enough independent vpdpbusd chains cover its latency.
// (Measured on a Zen 5 VM, 2 threads, M = 1 and 4, 4096 x 14336 and 14336 x 4096, in one process: one, two or
// four panels side by side, prefetching 4096 or 8192 bytes ahead, all within 4% of each other: DRAM-bound.)
// Prefill reuses each pair of panels across the row tiles of a 64-row block (from L2), as the da8w8 driver does.
#include "cpu/kernels/avx512_vnni/avx512.h"
#include "cpu/kernels/da8w4.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

// acc + the 4 products of unsigned bytes of u and the signed bytes s4[0..3] per int32 lane (vpdpbusd with a
// broadcast memory operand natively; inline assembly for the reason given at dpbusd in x86_intrinsics.h).
inline __m512i dpbusd_broadcast(__m512i acc, __m512i u, const int8_t* s4) {
#if defined(LOWBIT_SIMDE)
  int32_t v;
  std::memcpy(&v, s4, 4);
  return _mm512_dpbusd_epi32(acc, u, _mm512_set1_epi32(v));
#else
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*reinterpret_cast<const int32_t*>(s4)));
  return acc;
#endif
}

// c[r][j * 16 + col] (row stride NP * 16) = sum over groups of s * float(d) for rows [i0, i0 + R) and panels j.
template <int R, int NP>
void tile(const LinearArgs& a, const uint8_t* const* panel, int64_t i0, float* c) {
  // S = 2: separate accumulators for the low and high nibbles when the tile has too few chains of its own
  constexpr int S = R * NP < 8 ? 2 : 1;
  constexpr int ldc = NP * kPanel;
  const int64_t K = a.K, group = a.group, groups = K / group, group_bytes = da8w4_group_bytes(group);
  const __m512i low4 = _mm512_set1_epi8(15);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j) _mm512_storeu_ps(c + r * ldc + j * kPanel, _mm512_setzero_ps());
  const int8_t* x = a.xq + i0 * K;
  const int32_t* xsum = a.xq_sums + i0 * groups;
  for (int64_t g = 0; g < groups; ++g) {
    const uint8_t* w[NP];
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j) w[j] = panel[j] + g * group_bytes + kDA8W4Header;
    const int8_t* xg = x + g * group;
    __m512i acc[R][NP][S];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j)
#pragma GCC unroll 2
        for (int s = 0; s < S; ++s) acc[r][j][s] = _mm512_setzero_si512();
    for (int64_t k = 0; k < group; k += 8) {
      __m512i lo[NP], hi[NP];
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) {
        _mm_prefetch(reinterpret_cast<const char*>(w[j]) + kPrefetch, _MM_HINT_T0);
        const __m512i b = _mm512_loadu_si512(w[j]);
        lo[j] = _mm512_and_si512(b, low4);
        hi[j] = _mm512_and_si512(_mm512_srli_epi16(b, 4), low4);
        w[j] += kDA8W4Row;
      }
#pragma GCC unroll 12
      for (int r = 0; r < R; ++r) {
        if (NP == 1) {
          acc[r][0][0] = dpbusd_broadcast(acc[r][0][0], lo[0], xg + r * K + k);
          acc[r][0][S - 1] = dpbusd_broadcast(acc[r][0][S - 1], hi[0], xg + r * K + k + 4);
          continue;
        }
        int32_t q0, q1;
        std::memcpy(&q0, xg + r * K + k, 4);
        std::memcpy(&q1, xg + r * K + k + 4, 4);
        const __m512i x0 = _mm512_set1_epi32(q0), x1 = _mm512_set1_epi32(q1);
#pragma GCC unroll 4
        for (int j = 0; j < NP; ++j) {
          acc[r][j][0] = dpbusd(acc[r][j][0], lo[j], x0);
          acc[r][j][S - 1] = dpbusd(acc[r][j][S - 1], hi[j], x1);
        }
      }
    }
    __m512 s[NP];
    __m512i z[NP];
#pragma GCC unroll 4
    for (int j = 0; j < NP; ++j) {
      const uint8_t* gp = panel[j] + g * group_bytes;
      s[j] = _mm512_loadu_ps(reinterpret_cast<const float*>(gp));
      z[j] = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gp + kDA8W4Zeros)));
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512i xs = _mm512_set1_epi32(xsum[r * groups + g]);
#pragma GCC unroll 4
      for (int j = 0; j < NP; ++j) {
        const __m512i sum = S == 2 ? _mm512_add_epi32(acc[r][j][0], acc[r][j][S - 1]) : acc[r][j][0];
        const __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(sum, _mm512_mullo_epi32(z[j], xs)));
        float* cr = c + r * ldc + j * kPanel;
        _mm512_storeu_ps(cr, _mm512_fmadd_ps(s[j], d, _mm512_loadu_ps(cr)));
      }
    }
  }
}

constexpr int kMaxRows = 12;  // 2 panels: 24 accumulators, 4 weight vectors, 2 broadcasts, 1 mask in 32 zmm
constexpr int64_t kRowBlock = 64;

template <int NP>
void tile_rows_of(int64_t rows, const LinearArgs& a, const uint8_t* const* panel, int64_t i0, float* c) {
  switch (rows) {
#define LOWBIT_ROWS(R) \
  case R: return tile<R, NP>(a, panel, i0, c);
    LOWBIT_ROWS(1) LOWBIT_ROWS(2) LOWBIT_ROWS(3) LOWBIT_ROWS(4) LOWBIT_ROWS(5) LOWBIT_ROWS(6)
    LOWBIT_ROWS(7) LOWBIT_ROWS(8) LOWBIT_ROWS(9) LOWBIT_ROWS(10) LOWBIT_ROWS(11) LOWBIT_ROWS(12)
#undef LOWBIT_ROWS
  }
}

// Panels [p, p + NP), all rows: row blocks of kRowBlock in balanced tiles of at most kMaxRows rows.
template <int NP>
void panels(const KernelTable& kt, const LinearArgs& a, int64_t p, float* c) {
  const int64_t panel_bytes = da8w4_panel_bytes(a.K, a.group);
  const uint8_t* panel[NP];
  for (int j = 0; j < NP; ++j) panel[j] = a.packed + (p + j) * panel_bytes;
  for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
    const int64_t m = a.M - i0 < kRowBlock ? a.M - i0 : kRowBlock;
    const int64_t tiles = (m + kMaxRows - 1) / kMaxRows;
    for (int64_t t = 0, i = 0; t < tiles; ++t) {
      const int64_t r = tile_rows(m - i, tiles - t);
      tile_rows_of<NP>(r, a, panel, i0 + i, c + i * NP * kPanel);
      i += r;
    }
    for (int j = 0; j < NP; ++j) da8w4_store(kt, a, c + j * kPanel, NP * kPanel, p + j, i0, m);
  }
}

}  // namespace

void linear_da8w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  alignas(64) float c[kRowBlock * 2 * kPanel];
  int64_t p = p0;
  if (a.M > kGemvRows)
    for (; p + 2 <= p1; p += 2) panels<2>(kt, a, p, c);
  for (; p < p1; ++p) panels<1>(kt, a, p, c);
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
