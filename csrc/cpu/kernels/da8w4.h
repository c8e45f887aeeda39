// The pieces of da8w4 that every variant's driver shares (the drivers themselves: <variant>/da8w4.cpp).
// Torch-free and ISA-independent.
#pragma once

#include <cstdint>

#include "cpu/kernels/api.h"

namespace lowbit::cpu {

// sums[G] = sum of xq[k] over k in [G * group, (G + 1) * group), for one quantized row of K (a multiple of group).
// |sum| <= 127 * group fits int32 (group <= kMaxGroupDA8W4). They carry the zero points: the kernels compute
// sum_k (q - z) * xq as sum_k q * xq - z * sum_k xq, multiplying raw nibbles.
void da8w4_group_sums(const int8_t* xq, int64_t K, int64_t group, int32_t* sums);

// Rows [i0, i0 + m) of panel p: c[i][0:16] (row stride ldc; sum_G s * float(d_G)) multiplied by the row's
// activation scale in place, then stored with store_rows (row pre-scaling, bias, output dtype).
void da8w4_store(const KernelTable& kt, const LinearArgs& a, float* c, int64_t ldc, int64_t p, int64_t i0,
                 int64_t m);

}  // namespace lowbit::cpu
