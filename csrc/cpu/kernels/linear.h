// Drivers of the three linear modes over a range of output panels. Torch-free: the caller owns the
// threading (one contiguous panel range per thread) and the memory.
#pragma once

#include <cstdint>

#include "cpu/kernels/api.h"

namespace lowbit::cpu {

struct LinearArgs {
  int64_t M = 0, K = 0, N = 0;
  const float* x = nullptr;          // a16*: fp32 activations [M][K]
  const int8_t* xq = nullptr;        // da8w8: quantized activations [M][round_up4(K)]
  const float* x_scale = nullptr;    // da8w8: per-row scales [M]
  const uint8_t* packed = nullptr;   // [num_panels(N)][panel bytes]
  int64_t group = 0;                 // a16w4 only
  const float* bias = nullptr;       // fp32 [N] or null
  void* y = nullptr;                 // output [M][N] in y_dtype
  ActDType y_dtype = ActDType::f32;
};

void linear_a16w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
void linear_a16w4_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
void linear_da8w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);

}  // namespace lowbit::cpu
