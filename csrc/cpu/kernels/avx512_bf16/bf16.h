// The AVX512-BF16 variant (Cooper Lake, Sapphire Rapids and newer Xeons, Zen 4/5): the avx512_vnni kernels
// plus drivers that multiply bf16 activations in pairs with vdpbf16ps. Built natively or, as avx512_bf16-emu,
// against SIMDe (LOWBIT_VARIANT_NS differs between the two builds).
#pragma once

#include "cpu/kernels/api.h"
#include "cpu/kernels/avx512_vnni/a16w4_header.h"
#include "cpu/kernels/x86_intrinsics.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {

void linear_a16w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
void linear_a16w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);

inline int64_t tile_rows(int64_t left, int64_t tiles) { return left / tiles + (left % tiles != 0); }

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
