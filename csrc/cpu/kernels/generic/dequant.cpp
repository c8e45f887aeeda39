// Portable weight dequantization of one packed panel into an fp32 [kc][16] tile (layouts in api.h).
#include <cstring>

#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu::generic {

void widen_a16w8(const uint8_t* panel, int64_t k0, int64_t kc, float* dst) {
  const int8_t* w = reinterpret_cast<const int8_t*>(panel + kPanel * 4) + k0 * kPanel;
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t j = 0; j < kPanel; ++j) dst[k * kPanel + j] = float(w[k * kPanel + j]);
}

void widen_a16w4(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, float* dst) {
  const int64_t group_bytes = a16w4_group_bytes(group, offsets), header = a16w4_header(offsets);
  for (int64_t k = k0; k < k0 + kc; k += 2) {
    const uint8_t* q = panel + (k / group) * group_bytes + header + (k % group) / 2 * kPanel;
    float* lo = dst + (k - k0) * kPanel;
    float* hi = lo + kPanel;
    for (int64_t j = 0; j < kPanel; ++j) {
      lo[j] = float(q[j] & 15);
      hi[j] = float(q[j] >> 4);
    }
  }
}

}  // namespace lowbit::cpu::generic
