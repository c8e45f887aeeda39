// Tiling of the three modes. A thread owns a contiguous range of 16-column panels and streams each
// panel's weights once per block of kRowBlock activation rows: for the a16 modes a K-chunk of the panel is
// dequantized to an fp32 tile that stays in L1 and is reused by every row of the block.
#include "cpu/kernels/linear.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lowbit::cpu {
namespace {

constexpr int64_t kRowBlock = 64;  // rows whose fp32 results [64][16] stay in L1 beside the weight tile
constexpr int64_t kChunk = 256;    // K per dequantized tile: 16 KiB of fp32

size_t element_size(ActDType t) { return t == ActDType::f32 ? 4 : 2; }

// a16w8's tiled path; the per-column scales multiply the finished dot products.
void linear_a16w8_tiled(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  const int64_t panel_bytes = a16w8_panel_bytes(a.K);
  alignas(64) float tile[kChunk * kPanel];
  alignas(64) float c[kRowBlock * kPanel];
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = a.packed + p * panel_bytes;
    for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
      const int64_t m = std::min(kRowBlock, a.M - i0);
      for (int64_t k0 = 0; k0 < a.K; k0 += kChunk) {
        const int64_t kc = std::min(kChunk, a.K - k0);
        kt.gemm_a16w8_chunk(panel, k0, kc, a.x + i0 * a.K + k0, a.K, c, m, k0 > 0, tile);
      }
      // the panel starts with its 16 fp32 scales (4-byte aligned: panel bytes are multiples of 16)
      const auto* s = reinterpret_cast<const float*>(panel);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < kPanel; ++j) c[i * kPanel + j] *= s[j];
      store_rows(kt, a, c, kPanel, p, i0, m);
    }
  }
}

// Decode: up to kGemvRows rows at a time straight from the packed panels.
template <typename Gemv>
void gemv_panels(const KernelTable& kt, const LinearArgs& a, int64_t panel_bytes, Gemv gemv, int64_t p0,
                 int64_t p1) {
  alignas(64) float c[kGemvRows * kPanel];
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t i0 = 0; i0 < a.M; i0 += kGemvRows) {
      const int64_t m = std::min(kGemvRows, a.M - i0);
      gemv(a.packed + p * panel_bytes, i0, m, c);
      store_rows(kt, a, c, kPanel, p, i0, m);
    }
  }
}

}  // namespace

void store_rows(const KernelTable& kt, const LinearArgs& a, const float* c, int64_t ldc, int64_t p, int64_t i0,
                int64_t m) {
  const int64_t n0 = p * kPanel, width = std::min(kPanel, a.N - n0);
  const size_t es = element_size(a.y_dtype);
  for (int64_t i = 0; i < m; ++i) {
    auto* dst = static_cast<char*>(a.y) + ((i0 + i) * a.N + n0) * es;
    const float* ci = c + i * ldc;
    float scaled[kPanel];
    if (a.row_scale != nullptr && a.row_scale[i0 + i] != 1.f) {  // a pre-scaled row: exact power of two back
      for (int64_t j = 0; j < width; ++j) scaled[j] = ci[j] * a.row_scale[i0 + i];
      ci = scaled;
    }
    kt.from_f32(ci, a.bias ? a.bias + n0 : nullptr, dst, a.y_dtype, width);
  }
}

int64_t rows_to_prescale(const float* x, int64_t M, int64_t K, float* row_scale) {
  const float limit = std::numeric_limits<float>::max() / (256.f * float(K));
  int64_t count = 0;
  for (int64_t i = 0; i < M; ++i) {
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[i * K + k]));  // NaN never wins
    const bool scale = amax > limit && amax <= std::numeric_limits<float>::max();  // Inf/NaN rows stay as they are
    row_scale[i] = scale ? 0x1p64f : 1.f;
    count += scale;
  }
  return count;
}

void prescale_rows(const float* x, const float* row_scale, int64_t M, int64_t K, float* out) {
  for (int64_t i = 0; i < M; ++i) {
    const float f = row_scale[i] == 1.f ? 1.f : 0x1p-64f;
    for (int64_t k = 0; k < K; ++k) out[i * K + k] = x[i * K + k] * f;
  }
}

A16W4GroupSums::A16W4GroupSums(const LinearArgs& a) {
  const int64_t groups = a.K / a.group;
  float* sums = a.M * groups > kStackFloats ? (heap = new float[size_t(a.M * groups)]) : stack;
  for (int64_t i = 0; i < a.M; ++i)
    for (int64_t g = 0; g < groups; ++g) {
      float s = 0.f;
      for (int64_t k = g * a.group; k < (g + 1) * a.group; ++k) s += a.x[i * a.K + k];
      sums[i * groups + g] = s;
    }
  data = sums;
}

A16W4GroupSums::~A16W4GroupSums() { delete[] heap; }

void linear_a16w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  if (a.M <= kGemvRows) {
    auto gemv = [&](const uint8_t* panel, int64_t i0, int64_t m, float* c) {
      kt.gemv_a16w8(panel, a.K, a.x + i0 * a.K, a.K, m, c);
    };
    return gemv_panels(kt, a, a16w8_panel_bytes(a.K), gemv, p0, p1);
  }
  linear_a16w8_tiled(kt, a, p0, p1);
}

void linear_a16w4_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  // both paths multiply raw nibbles and apply scale and zero once per group and column (A16W4GroupSums)
  const int64_t groups = a.K / a.group;
  const A16W4GroupSums group_sums(a);
  const float* sums = group_sums.data;
  if (a.M <= kGemvRows) {
    auto gemv = [&](const uint8_t* panel, int64_t i0, int64_t m, float* c) {
      kt.gemv_a16w4(panel, a.K, a.group, a.offsets, a.x + i0 * a.K, a.K, sums + i0 * groups, m, c);
    };
    return gemv_panels(kt, a, a16w4_panel_bytes(a.K, a.group, a.offsets), gemv, p0, p1);
  }
  // Tiled: chunks of at most kChunk that never cross a group (even starts, as the nibble pairs require); the
  // raw dot products of a group collect in g, then the kernel adds s * (g[i] - z * sum_g(x[i])) to c[i]
  // (or s * g[i] + o * sum_g(x[i]) with float offsets).
  const int64_t panel_bytes = a16w4_panel_bytes(a.K, a.group, a.offsets);
  alignas(64) float tile[kChunk * kPanel];
  alignas(64) float g[kRowBlock * kPanel];
  alignas(64) float c[kRowBlock * kPanel];
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = a.packed + p * panel_bytes;
    for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
      const int64_t m = std::min(kRowBlock, a.M - i0);
      std::fill(c, c + m * kPanel, 0.f);
      for (int64_t k0 = 0; k0 < a.K;) {
        const int64_t gi = k0 / a.group, kc = std::min(kChunk, (gi + 1) * a.group - k0);
        kt.gemm_a16w4_chunk(panel, a.group, a.offsets, k0, kc, a.x + i0 * a.K + k0, a.K, sums + i0 * groups + gi, groups,
                            g, c, m, tile);
        k0 += kc;
      }
      store_rows(kt, a, c, kPanel, p, i0, m);
    }
  }
}

void linear_da8w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  const int64_t K4 = round_up4(a.K), panel_bytes = da8w8_panel_bytes(a.K);
  alignas(64) int32_t acc[kRowBlock * kPanel];
  alignas(64) float c[kRowBlock * kPanel];
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = a.packed + p * panel_bytes;
    const float* w_scale = reinterpret_cast<const float*>(panel);
    const int8_t* w = reinterpret_cast<const int8_t*>(panel + kPanel * 8);
    for (int64_t i0 = 0; i0 < a.M; i0 += kRowBlock) {
      const int64_t m = std::min(kRowBlock, a.M - i0);
      kt.gemm_s8_panel(a.xq + i0 * K4, K4, w, K4, acc, m);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < kPanel; ++j)
          c[i * kPanel + j] = float(acc[i * kPanel + j]) * a.x_scale[i0 + i] * w_scale[j];
      store_rows(kt, a, c, kPanel, p, i0, m);
    }
  }
}

}  // namespace lowbit::cpu
