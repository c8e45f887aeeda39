// Portable da8w4 driver: each group's sum d = sum_k (q - z) * xq is taken straight from the nibbles in int32
// (no partial sum exceeds the final bound 15 * 127 * g, so nothing wraps), then scaled by the group's fp32 scale
// into the row's fp32 sum. The SIMD variants compute d another way (acc - z * xsum) and must agree exactly.
#include <cstring>

#include "cpu/kernels/da8w4.h"
#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu::generic {

void linear_da8w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1) {
  const int64_t K = a.K, group = a.group, groups = K / group, group_bytes = da8w4_group_bytes(group);
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = a.packed + p * da8w4_panel_bytes(K, group);
    for (int64_t i = 0; i < a.M; ++i) {
      const int8_t* x = a.xq + i * K;
      float c[kPanel] = {};
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* gp = panel + g * group_bytes;
        for (int64_t j = 0; j < kPanel; ++j) {
          const int32_t z = gp[kDA8W4Zeros + j];
          int32_t d = 0;
          for (int64_t r = 0; r < group / 8; ++r) {
            const uint8_t* b = gp + kDA8W4Header + r * kDA8W4Row + j * 4;
            const int8_t* xr = x + g * group + 8 * r;
            for (int t = 0; t < 4; ++t)
              d += ((b[t] & 15) - z) * xr[t] + ((b[t] >> 4) - z) * xr[4 + t];
          }
          float s;
          std::memcpy(&s, gp + 4 * j, 4);
          c[j] += s * float(d);
        }
      }
      da8w4_store(kt, a, c, kPanel, p, i, 1);
    }
  }
}

}  // namespace lowbit::cpu::generic
