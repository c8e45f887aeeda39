// Canonical formats -> the packed panels the kernels read (layouts in api.h). Torch-free; each function
// packs the panels [p0, p1) so the caller can split the work across threads.
#pragma once

#include <cstdint>

namespace lowbit::cpu {

// weight int8 [N, K], scales fp32 [N]
void pack_a16w8(const int8_t* weight, const float* scales, int64_t N, int64_t K, uint8_t* out, int64_t p0,
                int64_t p1);
// weight uint8 [N, K/2] (k even in the low nibble), scales fp32 [N, K/group], zeros uint8 [N, K/group]
// in 0..15 or null for symmetric (zero point 8).
void pack_a16w4(const uint8_t* weight, const float* scales, const uint8_t* zeros, int64_t N, int64_t K,
                int64_t group, uint8_t* out, int64_t p0, int64_t p1);
// The same with float offsets [N, K/group] (w = scale * q + offset) instead of zero points: the panels of
// a16w4_panel_bytes(K, group, true).
void pack_a16w4_offsets(const uint8_t* weight, const float* scales, const float* offsets, int64_t N, int64_t K,
                        int64_t group, uint8_t* out, int64_t p0, int64_t p1);
// weight int8 [N, K], scales fp32 [N]; also stores each column's sum of weights (for VNNI's u8 x s8 form).
void pack_da8w8(const int8_t* weight, const float* scales, int64_t N, int64_t K, uint8_t* out, int64_t p0,
                int64_t p1);

// weight uint8 [N, K/2] (k even in the low nibble), scales fp32 [N, K/group], zeros uint8 [N, K/group] in 0..15
// or null for symmetric (zero point 8); group a multiple of 8 dividing K. Layout: api.h (da8w4).
void pack_da8w4(const uint8_t* weight, const float* scales, const uint8_t* zeros, int64_t N, int64_t K,
                int64_t group, uint8_t* out, int64_t p0, int64_t p1);

}  // namespace lowbit::cpu
