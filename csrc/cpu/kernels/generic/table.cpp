#include "cpu/kernels/generic/generic.h"

namespace lowbit::cpu {

const KernelTable& generic_kernels() {
  static const KernelTable table{
      "generic",         generic::to_f32,         generic::from_f32,        generic::widen_a16w8,
      generic::widen_a16w4, generic::gemv_a16w8, generic::gemv_a16w4,
      generic::gemm_f32_panel, generic::gemm_a16w8_chunk, generic::gemm_a16w4_chunk, generic::quantize_row_s8, generic::gemm_s8_panel,
  };
  return table;
}

}  // namespace lowbit::cpu
