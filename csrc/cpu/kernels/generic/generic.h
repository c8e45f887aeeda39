// The portable variant's micro-kernels (see api.h for what each one computes). Other variants call the
// scalar helpers for their tails, so every variant rounds the same way.
#pragma once

#include "cpu/kernels/api.h"

namespace lowbit::cpu::generic {

float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

void to_f32(const void* src, ActDType dtype, float* dst, int64_t n);
void from_f32(const float* src, const float* bias, void* dst, ActDType dtype, int64_t n);
void widen_a16w8(const uint8_t* panel, int64_t k0, int64_t kc, float* dst);
void widen_a16w4(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, float* dst);
// One a16w4 group header -> its 16 scales, zero points and offsets as fp32: zero points (0..15, exact) with
// offsets 0, or float offsets with zero points 0 (api.h, gemv_a16w4).
void a16w4_group_header(const uint8_t* gp, bool offsets, float* scale, float* zero, float* offset);
void gemv_a16w8(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, int64_t m, float* c);
void gemv_a16w4(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                const float* xsum, int64_t m, float* c);
void gemm_f32_panel(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m, bool accumulate);
void gemm_a16w8_chunk(const uint8_t* panel, int64_t k0, int64_t kc, const float* a, int64_t lda, float* c,
                      int64_t m, bool accumulate, float* tile);
void gemm_a16w4_chunk(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, const float* a,
                      int64_t lda, const float* xsum, int64_t ldxs, float* g, float* c, int64_t m, float* tile);
void quantize_row_s8(const float* x, int64_t K, int64_t K4, int8_t* xq, float* scale);
void gemm_s8_panel(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m);
void linear_da8w4(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);

}  // namespace lowbit::cpu::generic
