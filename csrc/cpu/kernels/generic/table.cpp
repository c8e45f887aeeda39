// The portable variant fills every field: it is the root of every other variant's table.
#include "cpu/kernels/generic/generic.h"
#include "cpu/kernels/linear.h"

namespace lowbit::cpu {

void LOWBIT_VARIANT_FILL(KernelTable& t) {
  t.linear_a16w8 = linear_a16w8_panels;
  t.linear_a16w4 = linear_a16w4_panels;
  t.linear_da8w8 = linear_da8w8_panels;
  t.linear_da8w4 = generic::linear_da8w4;
  t.to_f32 = generic::to_f32;
  t.from_f32 = generic::from_f32;
  t.widen_a16w8 = generic::widen_a16w8;
  t.widen_a16w4 = generic::widen_a16w4;
  t.gemv_a16w8 = generic::gemv_a16w8;
  t.gemv_a16w4 = generic::gemv_a16w4;
  t.gemm_f32_panel = generic::gemm_f32_panel;
  t.gemm_a16w8_chunk = generic::gemm_a16w8_chunk;
  t.gemm_a16w4_chunk = generic::gemm_a16w4_chunk;
  t.quantize_row_s8 = generic::quantize_row_s8;
  t.gemm_s8_panel = generic::gemm_s8_panel;
}

}  // namespace lowbit::cpu
