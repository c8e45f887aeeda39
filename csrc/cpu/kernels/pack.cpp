#include "cpu/kernels/pack.h"

#include <cstring>

#include "cpu/kernels/api.h"

namespace lowbit::cpu {
namespace {

inline void put_f32(uint8_t* dst, int64_t j, float v) { std::memcpy(dst + j * 4, &v, 4); }

}  // namespace

void pack_a16w8(const int8_t* weight, const float* scales, int64_t N, int64_t K, uint8_t* out, int64_t p0,
                int64_t p1) {
  const int64_t panel_bytes = a16w8_panel_bytes(K);
  for (int64_t p = p0; p < p1; ++p) {
    uint8_t* dst = out + p * panel_bytes;
    std::memset(dst, 0, size_t(panel_bytes));
    int8_t* w = reinterpret_cast<int8_t*>(dst + kPanel * 4);
    for (int64_t j = 0; j < kPanel && p * kPanel + j < N; ++j) {
      const int64_t n = p * kPanel + j;
      put_f32(dst, j, scales[n]);
      for (int64_t k = 0; k < K; ++k) w[k * kPanel + j] = weight[n * K + k];
    }
  }
}

namespace {

// zeros (uint8 zero points) or offsets (fp32), at most one of them; neither is symmetric (zero point 8)
void pack_int4_panels(const uint8_t* weight, const float* scales, const uint8_t* zeros, const float* offsets,
                      int64_t N, int64_t K, int64_t group, uint8_t* out, int64_t p0, int64_t p1) {
  const bool with_offsets = offsets != nullptr;
  const int64_t groups = K / group, group_bytes = a16w4_group_bytes(group, with_offsets);
  const int64_t panel_bytes = a16w4_panel_bytes(K, group, with_offsets), header = a16w4_header(with_offsets);
  for (int64_t p = p0; p < p1; ++p) {
    uint8_t* dst = out + p * panel_bytes;
    std::memset(dst, 0, size_t(panel_bytes));
    for (int64_t j = 0; j < kPanel && p * kPanel + j < N; ++j) {
      const int64_t n = p * kPanel + j;
      for (int64_t g = 0; g < groups; ++g) {
        uint8_t* gd = dst + g * group_bytes;
        put_f32(gd, j, scales[n * groups + g]);
        if (with_offsets) put_f32(gd + kA16W4Zeros, j, offsets[n * groups + g]);
        else gd[kA16W4Zeros + j] = zeros ? zeros[n * groups + g] : 8;
        // a canonical byte already holds (k, k+1) of one column in the order the kernels want
        const uint8_t* src = weight + n * (K / 2) + g * group / 2;
        for (int64_t kk = 0; kk < group / 2; ++kk) gd[header + kk * kPanel + j] = src[kk];
      }
    }
  }
}

}  // namespace

void pack_a16w4(const uint8_t* weight, const float* scales, const uint8_t* zeros, int64_t N, int64_t K,
                int64_t group, uint8_t* out, int64_t p0, int64_t p1) {
  pack_int4_panels(weight, scales, zeros, nullptr, N, K, group, out, p0, p1);
}

void pack_a16w4_offsets(const uint8_t* weight, const float* scales, const float* offsets, int64_t N, int64_t K,
                        int64_t group, uint8_t* out, int64_t p0, int64_t p1) {
  pack_int4_panels(weight, scales, nullptr, offsets, N, K, group, out, p0, p1);
}

void pack_da8w8(const int8_t* weight, const float* scales, int64_t N, int64_t K, uint8_t* out, int64_t p0,
                int64_t p1) {
  const int64_t panel_bytes = da8w8_panel_bytes(K);
  for (int64_t p = p0; p < p1; ++p) {
    uint8_t* dst = out + p * panel_bytes;
    std::memset(dst, 0, size_t(panel_bytes));
    int8_t* w = reinterpret_cast<int8_t*>(dst + kPanel * 8);
    for (int64_t j = 0; j < kPanel && p * kPanel + j < N; ++j) {
      const int64_t n = p * kPanel + j;
      int32_t sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        w[(k / 4) * kPanel * 4 + j * 4 + k % 4] = weight[n * K + k];
        sum += weight[n * K + k];
      }
      put_f32(dst, j, scales[n]);
      std::memcpy(dst + kPanel * 4 + j * 4, &sum, 4);
    }
  }
}

void pack_da8w4(const uint8_t* weight, const float* scales, const uint8_t* zeros, int64_t N, int64_t K,
                int64_t group, uint8_t* out, int64_t p0, int64_t p1) {
  const int64_t groups = K / group, group_bytes = da8w4_group_bytes(group), panel_bytes = da8w4_panel_bytes(K, group);
  for (int64_t p = p0; p < p1; ++p) {
    uint8_t* dst = out + p * panel_bytes;
    std::memset(dst, 0, size_t(panel_bytes));
    for (int64_t j = 0; j < kPanel && p * kPanel + j < N; ++j) {
      const int64_t n = p * kPanel + j;
      const uint8_t* row = weight + n * (K / 2);
      auto q = [&](int64_t k) { return uint8_t((row[k / 2] >> (k % 2 * 4)) & 15); };
      for (int64_t g = 0; g < groups; ++g) {
        uint8_t* gd = dst + g * group_bytes;
        put_f32(gd, j, scales[n * groups + g]);
        gd[kDA8W4Zeros + j] = zeros ? zeros[n * groups + g] : 8;
        for (int64_t r = 0; r < group / 8; ++r) {
          const int64_t k = g * group + 8 * r;
          for (int64_t t = 0; t < 4; ++t)
            gd[kDA8W4Header + r * kDA8W4Row + j * 4 + t] = uint8_t(q(k + t) | q(k + 4 + t) << 4);
        }
      }
    }
  }
}

}  // namespace lowbit::cpu
