// Portable decode kernels: a few activation rows against one packed panel, weights read once in place.
#include <cstring>

#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu::generic {

void gemv_a16w8(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, int64_t m, float* c) {
  float scale[kPanel];
  std::memcpy(scale, panel, sizeof(scale));
  const int8_t* w = reinterpret_cast<const int8_t*>(panel + kPanel * 4);
  for (int64_t i = 0; i < m; ++i) {
    float acc[kPanel] = {};
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < kPanel; ++j) acc[j] += x[i * ldx + k] * float(w[k * kPanel + j]);
    for (int64_t j = 0; j < kPanel; ++j) c[i * kPanel + j] = acc[j] * scale[j];
  }
}

void a16w4_group_header(const uint8_t* gp, bool offsets, float* scale, float* zero, float* offset) {
  std::memcpy(scale, gp, kPanel * 4);
  if (offsets) {
    std::memcpy(offset, gp + kA16W4Zeros, kPanel * 4);
    for (int64_t j = 0; j < kPanel; ++j) zero[j] = 0.f;
  } else {
    for (int64_t j = 0; j < kPanel; ++j) zero[j] = gp[kA16W4Zeros + j], offset[j] = 0.f;
  }
}

void gemv_a16w4(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                const float* xsum, int64_t m, float* c) {
  const int64_t groups = K / group, group_bytes = a16w4_group_bytes(group, offsets);
  for (int64_t i = 0; i < m; ++i) {
    float out[kPanel] = {};
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* gp = panel + g * group_bytes;
      float scale[kPanel], zero[kPanel], offset[kPanel], acc[kPanel] = {};
      a16w4_group_header(gp, offsets, scale, zero, offset);
      const uint8_t* q = gp + a16w4_header(offsets);
      const float* xi = x + i * ldx + g * group;
      for (int64_t kk = 0; kk < group / 2; ++kk)
        for (int64_t j = 0; j < kPanel; ++j)
          acc[j] += xi[2 * kk] * float(q[kk * kPanel + j] & 15) + xi[2 * kk + 1] * float(q[kk * kPanel + j] >> 4);
      const float xs = xsum[i * groups + g];
      for (int64_t j = 0; j < kPanel; ++j) out[j] = offset[j] * xs + (out[j] + scale[j] * (acc[j] - zero[j] * xs));
    }
    std::memcpy(c + i * kPanel, out, sizeof(out));
  }
}

}  // namespace lowbit::cpu::generic
