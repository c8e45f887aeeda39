// AVX-512 + VNNI: one zmm holds a whole 16-column panel row, so every kernel reads a panel row with one load;
// da8w8 multiplies with vpdpbusd, two panels per tile. Conversions, quantization and the a16 drivers are
// inherited (avx2, generic).
#include "cpu/kernels/avx512_vnni/avx512.h"

namespace lowbit::cpu {

void LOWBIT_VARIANT_FILL(KernelTable& t) {
  namespace v = LOWBIT_VARIANT_NS;
  t.gemv_a16w8 = v::gemv_a16w8;
  t.gemv_a16w4 = v::gemv_a16w4;
  t.gemm_f32_panel = v::gemm_f32_panel;
  t.gemm_a16w8_chunk = v::gemm_a16w8_chunk;
  t.gemm_a16w4_chunk = v::gemm_a16w4_chunk;
  t.gemm_s8_panel = v::gemm_s8_panel;
  t.linear_da8w8 = v::linear_da8w8;
  t.linear_da8w4 = v::linear_da8w4;
}

}  // namespace lowbit::cpu
