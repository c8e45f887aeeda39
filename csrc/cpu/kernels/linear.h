// The default drivers of the three linear modes over a range of output panels (KernelTable::linear_*), built
// on the table's micro-kernels. Torch-free: the caller owns the threading (one contiguous panel range per
// thread) and the memory.
#pragma once

#include <cstdint>

#include "cpu/kernels/api.h"

namespace lowbit::cpu {

void linear_a16w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
void linear_a16w4_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
void linear_da8w8_panels(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);

// Rows [i0, i0 + m) of panel p: c (row stride ldc) -> y, only the columns that exist, bias added in fp32,
// converted to the output dtype by the table's from_f32.
void store_rows(const KernelTable& kt, const LinearArgs& a, const float* c, int64_t ldc, int64_t p, int64_t i0,
                int64_t m);

// Rows of x so large that a sum of K products with weights (|q| <= 128, or the folded int4 forms) could overflow
// fp32 although the result, once scaled, may be finite (amax > FLT_MAX / (256 K), e.g. 3e38 against a weight
// scale of 1e-20): row_scale[i] = 2^64 for those (finite) rows, else 1. Returns how many there are. The caller
// multiplies them by 2^-64 (prescale_rows: exact) and the drivers multiply the output row back (store_rows).
int64_t rows_to_prescale(const float* x, int64_t M, int64_t K, float* row_scale);
void prescale_rows(const float* x, const float* row_scale, int64_t M, int64_t K, float* out);

// a16w4: data[i * groups + g] = the fp32 sum, in k order, of a.x over row i and group g. They absorb the zero
// points: x . (q - z) = x . q - z * sum(x) (or carry the float offsets: x . (s q + o) = s x . q + o sum(x)), so
// kernels multiply raw nibbles and apply scale and zero (or offset) once per group. On the stack for decode-sized calls (nothing allocated per token), on the heap beyond. No inline
// member functions: the AVX-512 drivers use it too, and must not emit a shared copy of one (api.h, variants).
struct A16W4GroupSums {
  explicit A16W4GroupSums(const LinearArgs& a);
  ~A16W4GroupSums();
  A16W4GroupSums(const A16W4GroupSums&) = delete;
  A16W4GroupSums& operator=(const A16W4GroupSums&) = delete;

  static constexpr int64_t kStackFloats = 4096;
  alignas(64) float stack[kStackFloats];
  float* heap = nullptr;
  const float* data;
};

}  // namespace lowbit::cpu
