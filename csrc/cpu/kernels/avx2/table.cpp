#include "cpu/kernels/avx2/avx2.h"

namespace lowbit::cpu {

const KernelTable& avx2_kernels() {
  static const KernelTable table{
      "avx2",         avx2::to_f32,         avx2::from_f32,        avx2::widen_a16w8,
      avx2::widen_a16w4, avx2::gemv_a16w8, avx2::gemv_a16w4,
      avx2::gemm_f32_panel, avx2::gemm_a16w8_chunk, avx2::gemm_a16w4_chunk, avx2::quantize_row_s8, avx2::gemm_s8_panel,
  };
  return table;
}

}  // namespace lowbit::cpu
