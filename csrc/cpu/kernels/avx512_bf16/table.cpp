// AVX512-BF16 over avx512_vnni: only the a16 drivers change (bf16 pairs into vdpbf16ps).
#include "cpu/kernels/avx512_bf16/bf16.h"

namespace lowbit::cpu {

void LOWBIT_VARIANT_FILL(KernelTable& t) {
  t.linear_a16w8 = LOWBIT_VARIANT_NS::linear_a16w8;
  t.linear_a16w4 = LOWBIT_VARIANT_NS::linear_a16w4;
}

}  // namespace lowbit::cpu
