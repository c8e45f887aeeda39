// AVX2 + FMA + F16C: every micro-kernel vectorized; the drivers are generic's.
#include "cpu/kernels/avx2/avx2.h"

namespace lowbit::cpu {

void LOWBIT_VARIANT_FILL(KernelTable& t) {
  t.to_f32 = avx2::to_f32;
  t.from_f32 = avx2::from_f32;
  t.widen_a16w8 = avx2::widen_a16w8;
  t.widen_a16w4 = avx2::widen_a16w4;
  t.gemv_a16w8 = avx2::gemv_a16w8;
  t.gemv_a16w4 = avx2::gemv_a16w4;
  t.gemm_f32_panel = avx2::gemm_f32_panel;
  t.gemm_a16w8_chunk = avx2::gemm_a16w8_chunk;
  t.gemm_a16w4_chunk = avx2::gemm_a16w4_chunk;
  t.quantize_row_s8 = avx2::quantize_row_s8;
  t.gemm_s8_panel = avx2::gemm_s8_panel;
  t.linear_da8w4 = avx2::linear_da8w4;
}

}  // namespace lowbit::cpu
