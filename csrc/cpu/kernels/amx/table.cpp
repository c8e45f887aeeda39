// AMX over avx512_bf16: the three linear drivers change; each keeps its parent's driver for the calls tiles do
// not pay for or fit (decode-sized M, fp32/fp16 activations in the a16 modes, a16w4 groups not a multiple of
// 32) and for a process the OS refuses tile data (tiles.cpp).
#include "cpu/kernels/amx/amx.h"

namespace lowbit::cpu {

void LOWBIT_VARIANT_FILL(KernelTable& t) {
  LOWBIT_VARIANT_NS::parent_a16w8 = t.linear_a16w8;
  LOWBIT_VARIANT_NS::parent_a16w4 = t.linear_a16w4;
  LOWBIT_VARIANT_NS::parent_da8w8 = t.linear_da8w8;
  t.linear_a16w8 = LOWBIT_VARIANT_NS::linear_a16w8;
  t.linear_a16w4 = LOWBIT_VARIANT_NS::linear_a16w4;
  t.linear_da8w8 = LOWBIT_VARIANT_NS::linear_da8w8;
}

}  // namespace lowbit::cpu
