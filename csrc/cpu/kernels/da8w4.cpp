#include "cpu/kernels/da8w4.h"

#include "cpu/kernels/linear.h"

namespace lowbit::cpu {

void da8w4_group_sums(const int8_t* xq, int64_t K, int64_t group, int32_t* sums) {
  for (int64_t g = 0; g < K / group; ++g) {
    int32_t s = 0;
    for (int64_t k = g * group; k < (g + 1) * group; ++k) s += xq[k];
    sums[g] = s;
  }
}

void da8w4_store(const KernelTable& kt, const LinearArgs& a, float* c, int64_t ldc, int64_t p, int64_t i0,
                 int64_t m) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < kPanel; ++j) c[i * ldc + j] *= a.x_scale[i0 + i];
  store_rows(kt, a, c, ldc, p, i0, m);
}

}  // namespace lowbit::cpu
