// a16w8 and a16w4 with bf16 activations on AVX512-BF16: vdpbf16ps multiplies 16 pairs of bf16 and adds both
// products to an fp32 lane, 32 multiply-adds per instruction (twice a 512-bit FMA). int8 and int4 weight
// values are exact in bf16, so every product is exact and only the fp32 accumulation rounds.
//
// Where it pays: a K-chunk of one panel is converted once into bf16 pairs (k, k+1) per column (a 16 KiB tile
// that stays in L1) and then multiplied into every activation row, up to 12 rows per register tile, with the
// activation pair read as one broadcast dword. The conversion costs about as much as the products of one row,
// so decode (M <= kGemvRows) keeps the parent variant's FMA kernels, which convert in registers and never
// write a tile.
//
// Semantics: vdpbf16ps reads subnormal bf16 activations as zero and flushes subnormal partial sums to zero
// (x86_intrinsics.h); on this path a subnormal activation contributes nothing (at most 2^-126 * |w| per
// term, below the fp32 rounding of any normal result).
#include "cpu/kernels/avx512_bf16/bf16.h"

#include "cpu/kernels/linear.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {
namespace {

constexpr int64_t kRowBlock = 64;  // rows whose fp32 results [64][16] stay in L1 beside the tile
constexpr int64_t kChunk = 512;    // k per bf16 tile: 256 pairs x 64 bytes = 16 KiB
constexpr int kMaxRows = 12;       // 12 independent accumulators cover vdpbf16ps's latency

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// A heap buffer without std:: templates: a template instantiated in this file would be compiled with AVX-512
// flags, and the linker may keep that copy for code that runs on CPUs without AVX-512.
struct FloatBuffer {
  float* p;
  explicit FloatBuffer(int64_t n) : p(new float[size_t(n)]) {}
  ~FloatBuffer() { delete[] p; }
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
};

// dword j = bf16(even[j]) | bf16(odd[j]) << 16 for fp32 vectors holding small integers (exact in bf16, so
// their bf16 is their high half): the high words of both, interleaved.
inline __m512i pair_bf16(__m512 even, __m512 odd) {
  alignas(64) static const int16_t idx[32] = {1,  33, 3,  35, 5,  37, 7,  39, 9,  41, 11, 43, 13, 45, 15, 47,
                                              17, 49, 19, 51, 21, 53, 23, 55, 25, 57, 27, 59, 29, 61, 31, 63};
  return _mm512_permutex2var_epi16(_mm512_castps_si512(even), _mm512_load_si512(idx), _mm512_castps_si512(odd));
}

inline __m512 widen_s8(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// k in [k0, k0 + kc) of an a16w8 panel as bf16 pairs: tile[(kc + 1) / 2][16] dwords; an odd last k pairs with 0.
void tile_a16w8(const uint8_t* panel, int64_t k0, int64_t kc, __m512i* tile) {
  const uint8_t* w = panel + kPanel * 4 + k0 * kPanel;
  int64_t k = 0;
  for (; k + 2 <= kc; k += 2) tile[k / 2] = pair_bf16(widen_s8(w + k * kPanel), widen_s8(w + (k + 1) * kPanel));
  if (k < kc) tile[k / 2] = pair_bf16(widen_s8(w + k * kPanel), _mm512_setzero_ps());
}

// k in [k0, k0 + kc) of one a16w4 group (k0, kc even): each packed byte already holds the pair (k, k + 1).
void tile_a16w4(const uint8_t* q, int64_t kc, __m512i* tile) {
  const __m512i low4 = _mm512_set1_epi32(15);
  for (int64_t k = 0; k < kc; k += 2) {
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k / 2 * kPanel)));
    tile[k / 2] = pair_bf16(_mm512_cvtepi32_ps(_mm512_and_si512(b, low4)), _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4)));
  }
}

// out[r][0:16] (+)= x[r][0:kc] . tile for r < R; x has row stride ldx (in bf16 elements), starts at an even k.
template <int R>
void dot_tile(const uint16_t* x, int64_t ldx, const __m512i* tile, int64_t kc, float* out, bool accumulate) {
  __m512 acc[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc[r] = accumulate ? _mm512_loadu_ps(out + r * kPanel) : _mm512_setzero_ps();
  const int64_t pairs = kc / 2;
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512i w = _mm512_load_si512(tile + p);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      int32_t xx;
      std::memcpy(&xx, x + r * ldx + 2 * p, 4);  // (x[k], x[k + 1]) as one dword
      acc[r] = dpbf16(acc[r], _mm512_set1_epi32(xx), w);
    }
  }
  if (kc % 2) {  // the last k of an odd K: its pair is (x[k], 0), never reading past the row
    const __m512i w = _mm512_load_si512(tile + pairs);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = dpbf16(acc[r], _mm512_set1_epi32(x[r * ldx + kc - 1]), w);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) _mm512_storeu_ps(out + r * kPanel, acc[r]);
}

using DotFn = void (*)(const uint16_t*, int64_t, const __m512i*, int64_t, float*, bool);
constexpr DotFn kDots[kMaxRows + 1] = {nullptr,     dot_tile<1>, dot_tile<2>, dot_tile<3>,  dot_tile<4>,
                                       dot_tile<5>, dot_tile<6>, dot_tile<7>, dot_tile<8>,  dot_tile<9>,
                                       dot_tile<10>, dot_tile<11>, dot_tile<12>};

// out[i] (+)= x[i] . tile for i < m, in balanced register tiles.
void dot_rows(const uint16_t* x, int64_t ldx, const __m512i* tile, int64_t kc, float* out, int64_t m,
              bool accumulate) {
  const int64_t tiles = (m + kMaxRows - 1) / kMaxRows;
  for (int64_t t = 0, i = 0; t < tiles; ++t) {
    const int64_t r = tile_rows(m - i, tiles - t);
    kDots[r](x + i * ldx, ldx, tile, kc, out + i * kPanel, accumulate);
    i += r;
  }
}

// Rows [i0, i0 + m) of panel p: c[m][16] -> y (only the columns that exist), bias added in fp32.
void store_panel(const KernelTable& kt, const LinearArgs& a, const float* c, int64_t p, int64_t i0, int64_t m) {
  const int64_t n0 = p * kPanel, width = min64(kPanel, a.N - n0);
  const size_t es = a.y_dtype == ActDType::f32 ? 4 : 2;
  for (int64_t i = 0; i < m; ++i) {
    auto* dst = static_cast<char*>(a.y) + ((i0 + i) * a.N + n0) * es;
    kt.from_f32(c + i * kPanel, a.bias ? a.bias + n0 : nullptr, dst, a.y_dtype, width);
  }
}

}  // namespace

void linear_a16w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.x_bf16 == nullptr || a.M <= kGemvRows) return linear_a16w8_panels(kt, a, p0, p1);
  const int64_t panel_bytes = a16w8_panel_bytes(a.K);
  __m512i tile[kChunk / 2];
  alignas(64) float c[kRowBlock * kPanel];
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = a.packed + p * panel_bytes;
    const __m512 s = _mm512_loadu_ps(reinterpret_cast<const float*>(panel));
    for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
      const int64_t m = min64(kRowBlock, a.M - i0);
      for (int64_t k0 = 0; k0 < a.K; k0 += kChunk) {
        const int64_t kc = min64(kChunk, a.K - k0);
        tile_a16w8(panel, k0, kc, tile);
        dot_rows(a.x_bf16 + i0 * a.K + k0, a.K, tile, kc, c, m, k0 > 0);
      }
      for (int64_t i = 0; i < m; ++i) _mm512_storeu_ps(c + i * kPanel, _mm512_mul_ps(_mm512_loadu_ps(c + i * kPanel), s));
      store_panel(kt, a, c, p, i0, m);
    }
  }
}

void linear_a16w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.x_bf16 == nullptr || a.M <= kGemvRows) return linear_a16w4_panels(kt, a, p0, p1);
  // per-row, per-group activation sums absorb the zero points: x . (q - z) = x . q - z * sum(x)
  const int64_t groups = a.K / a.group;
  FloatBuffer sums(a.M * groups);
  for (int64_t i = 0; i < a.M; ++i)
    for (int64_t g = 0; g < groups; ++g) {
      float t = 0.f;
      for (int64_t k = g * a.group; k < (g + 1) * a.group; ++k) t += a.x[i * a.K + k];
      sums.p[i * groups + g] = t;
    }
  const int64_t panel_bytes = a16w4_panel_bytes(a.K, a.group), group_bytes = a16w4_group_bytes(a.group);
  __m512i tile[kChunk / 2];
  alignas(64) float gsum[kRowBlock * kPanel];  // the raw dot products of the group so far
  alignas(64) float c[kRowBlock * kPanel];
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = a.packed + p * panel_bytes;
    for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
      const int64_t m = min64(kRowBlock, a.M - i0);
      for (int64_t i = 0; i < m * kPanel; i += 16) _mm512_storeu_ps(c + i, _mm512_setzero_ps());
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* gp = panel + g * group_bytes;
        for (int64_t kg = 0; kg < a.group; kg += kChunk) {  // chunks inside the group (even k, as pairs need)
          const int64_t kc = min64(kChunk, a.group - kg);
          tile_a16w4(gp + kPanel * 8 + kg / 2 * kPanel, kc, tile);
          dot_rows(a.x_bf16 + i0 * a.K + g * a.group + kg, a.K, tile, kc, gsum, m, kg > 0);
        }
        const auto* sz = reinterpret_cast<const float*>(gp);
        const __m512 s = _mm512_loadu_ps(sz), z = _mm512_loadu_ps(sz + 16);
        for (int64_t i = 0; i < m; ++i) {
          const __m512 xs = _mm512_set1_ps(sums.p[(i0 + i) * groups + g]);
          _mm512_storeu_ps(c + i * kPanel, _mm512_fmadd_ps(s, _mm512_fnmadd_ps(z, xs, _mm512_loadu_ps(gsum + i * kPanel)),
                                                           _mm512_loadu_ps(c + i * kPanel)));
        }
      }
      store_panel(kt, a, c, p, i0, m);
    }
  }
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
