// The AVX-512 F/BW/VL/DQ + VNNI variant's micro-kernels (what each computes: api.h). Compiled with those flags
// (Skylake-SP .. Ice Lake Xeons, Zen 4/5) or, as avx512_vnni-emu, against SIMDe; the namespace differs
// between the two builds (LOWBIT_VARIANT_NS), so nothing here may live outside it.
#pragma once

#include "cpu/kernels/api.h"
#include "cpu/kernels/avx512_vnni/a16w4_header.h"
#include "cpu/kernels/x86_intrinsics.h"

namespace lowbit::cpu::LOWBIT_VARIANT_NS {

void gemv_a16w8(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, int64_t m, float* c);
void gemv_a16w4(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                const float* xsum, int64_t m, float* c);
void gemm_f32_panel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m, bool accumulate);
void gemm_a16w8_chunk(const uint8_t* panel, int64_t k0, int64_t kc, const float* a, int64_t lda, float* c,
                      int64_t m, bool accumulate, float* tile);
void gemm_a16w4_chunk(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, const float* a,
                      int64_t lda, const float* xsum, int64_t ldxs, float* g, float* c, int64_t m, float* tile);
void gemm_s8_panel(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m);
// da8w8's driver, two panels per register tile
void linear_da8w8(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);
// da8w4's driver (da8w4.cpp)
void linear_da8w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);

// Rows of the next register tile when `left` rows remain for `tiles` tiles: spread evenly (a short last tile
// would wait on the FMA latency with too few independent accumulators).
inline int64_t tile_rows(int64_t left, int64_t tiles) { return left / tiles + (left % tiles != 0); }

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
