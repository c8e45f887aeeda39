// The torch-free kernel interface of lowbit's CPU backend.
//
// Everything under csrc/cpu/kernels/ is plain C++ with no torch dependency: the torch bindings in
// csrc/cpu/registration.cpp validate tensors, allocate outputs and hand raw pointers to the drivers in
// linear.h, which tile the work and call the micro-kernels of one instruction-set variant through a
// KernelTable. Each variant (generic/, avx2/, avx512_vnni/, ...) fills the fields it overrides from files
// compiled with its own flags, over a copy of its parent's table (isa.h); adding one is a folder and one
// lowbit_add_variant() call in CMakeLists.txt.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit::cpu {

// Output columns per packed panel. One panel is the unit of work a thread takes and the unit a
// micro-kernel produces; 16 fp32 lanes are two AVX2 or one AVX512 register.
constexpr int64_t kPanel = 16;
// Rows up to which the decode kernels (gemv_*) run; more rows amortize a widened tile instead.
constexpr int64_t kGemvRows = 4;
// Largest K of da8w8: K products of an activation in -127..127 and a weight in -128..127 (any int8 is
// accepted) must sum within int32 in both signs: 127 * 128 * K <= 2^31 - 1.
constexpr int64_t kMaxK8 = INT32_MAX / (127 * 128);

enum class ActDType : int32_t { f32 = 0, bf16 = 1, f16 = 2 };

// ---- Packed layouts (identical for every variant, so packing is ISA-independent) ----
// Panel p holds output columns [16p, 16p + 16); columns past N are zero-padded (weight 0, scale 0).
//
// a16w8: [16 x f32 scale][K x 16 int8]                               (k-major, 16 columns per k)
// a16w4: per group: [16 x f32 scale][16 x u8 zero][g/2 x 16 bytes]   byte = q[k] | q[k+1] << 4 (k even)
//        (the zero points as bytes: at M = 1 the kernels stream these panels from DRAM, and 4-byte zero points
//        cost 6% more bytes at g = 128)
//        or, with float offsets (w = scale * q + offset, GGUF Q4_1's d * q + m):
//        per group: [16 x f32 scale][16 x f32 offset][g/2 x 16 bytes]. The two forms differ in size for every
//        (K, g) (80 + 8g against 128 + 8g bytes per group), so the op tells them apart by the packed size.
// da8w8: [16 x f32 scale][16 x i32 sum_k w][K4/4 x 16 x 4 int8]      4 consecutive k of one column together
//        (K4 = K rounded up to 4, padded with zeros): the dot-product-of-4-bytes order of VNNI/vpmaddwd.
inline int64_t a16w8_panel_bytes(int64_t K) { return kPanel * 4 + K * kPanel; }
constexpr int64_t kA16W4Zeros = kPanel * 4;   // offset of a group's zero points (or float offsets)
constexpr int64_t kA16W4Header = kPanel * 5;  // offset of a group's weights (a multiple of 16)
constexpr int64_t kA16W4OffsetHeader = kPanel * 8;  // the same with float offsets
inline int64_t a16w4_header(bool offsets) { return offsets ? kA16W4OffsetHeader : kA16W4Header; }
inline int64_t a16w4_group_bytes(int64_t group, bool offsets = false) {
  return a16w4_header(offsets) + group / 2 * kPanel;
}
inline int64_t a16w4_panel_bytes(int64_t K, int64_t group, bool offsets = false) {
  return K / group * a16w4_group_bytes(group, offsets);
}
inline int64_t round_up4(int64_t K) { return (K + 3) / 4 * 4; }
inline int64_t da8w8_panel_bytes(int64_t K) { return kPanel * 8 + round_up4(K) * kPanel; }
// da8w4: per group: [16 x f32 scale][16 x u8 zero][g/8 rows x 16 columns x 4 bytes], byte (r, c, j) =
//        q[c][8r + j] | q[c][8r + 4 + j] << 4 (j = 0..3): one 64-byte row AND 0x0F is the unsigned operand of a
//        4-byte dot product (VNNI, vpmaddubsw) for k = 8r..8r+3 of all 16 columns, the row >> 4 that of 8r+4..8r+7.
//        Padding columns: weight nibble 0, scale 0, zero point 0. The group size is a multiple of 8.
constexpr int64_t kDA8W4Zeros = kPanel * 4;   // offset of a group's zero points
constexpr int64_t kDA8W4Header = kPanel * 5;  // offset of a group's weight rows
constexpr int64_t kDA8W4Row = kPanel * 4;     // bytes of one weight row (8 k of 16 columns)
inline int64_t da8w4_group_bytes(int64_t group) { return kDA8W4Header + group / 8 * kDA8W4Row; }  // 80 + 8g
inline int64_t da8w4_panel_bytes(int64_t K, int64_t group) { return K / group * da8w4_group_bytes(group); }
// Largest group of da8w4: a group's sum d = sum_k (q - z) * xq, |q - z| <= 15 and |xq| <= 127, must fit int32:
// 15 * 127 * g <= 2^31 - 1, so g <= 1127288. The SIMD kernels compute d as acc - z * xsum (acc = sum q * xq,
// xsum = sum xq, 0 <= q, z <= 15): each term and every partial sum of acc is within 15 * 127 * g too, so nothing
// wraps (and were it to, int32 arithmetic is exact modulo 2^32: d, which fits, would still come out exact).
constexpr int64_t kMaxGroupDA8W4 = INT32_MAX / (15 * 127);
// (no N + 15: out_features is a caller's int, and INT64_MAX must not overflow)
inline int64_t num_panels(int64_t N) { return N / kPanel + (N % kPanel != 0); }

// ---- Arguments of the linear drivers ----
struct LinearArgs {
  int64_t M = 0, K = 0, N = 0;
  const float* x = nullptr;          // a16*: fp32 activations [M][K]
  const uint16_t* x_bf16 = nullptr;  // a16*: the same activations as bf16 [M][K] when the op's input is bf16,
                                     // else null (a variant may read these instead of x)
  const int8_t* xq = nullptr;        // da8w8: quantized activations [M][round_up4(K)]
  const float* x_scale = nullptr;    // da8w8: per-row scales [M]
                                     // (da8w4 uses xq and x_scale too, with row stride K: K % 8 == 0)
  const int32_t* xq_sums = nullptr;  // da8w4: [M][K / group] sums of xq over each group (da8w4_group_sums)
  const uint8_t* packed = nullptr;   // [num_panels(N)][panel bytes]
  int64_t group = 0;                 // a16w4 and da8w4
  bool offsets = false;              // a16w4 only: the panels hold float offsets, not uint8 zero points
  const float* row_scale = nullptr;  // [M] or null (all 1): y[i] = row_scale[i] * (x[i] . w) + bias, for rows
                                     // that were scaled down to keep the fp32 sums finite (linear.h)
  const float* bias = nullptr;       // fp32 [N] or null
  void* y = nullptr;                 // output [M][N] in y_dtype
  ActDType y_dtype = ActDType::f32;
};

struct KernelTable;
// A driver computes y for the output panels [p0, p1) (one thread's contiguous share).
using LinearDriver = void (*)(const KernelTable& kt, const LinearArgs& a, int64_t p0, int64_t p1);

// ---- The kernels of one instruction-set variant ----
struct KernelTable {
  const char* name;

  // The three linear modes over a range of panels. generic fills them with linear.h's drivers, which tile the
  // work and call the micro-kernels below; a variant overrides one when it needs another tiling (e.g. bf16 pairs).
  LinearDriver linear_a16w8;
  LinearDriver linear_a16w4;
  LinearDriver linear_da8w8;
  // da8w4: y[i][c] = x_scale[i] * sum_G s[G][c] * float(d_G[i][c]) (+ bias), d_G = sum_{k in G} (q - z) * xq
  // exact in int32 (group <= kMaxGroupDA8W4); each variant has its own (generic/, avx2/, avx512_vnni/da8w4.cpp).
  LinearDriver linear_da8w4;

  // Activation row(s) in bf16/fp16/fp32 -> fp32: exact widening, except that subnormal bf16 values read as
  // (signed) zero. The bf16 dot-product instruction (vdpbf16ps) treats them so, and every variant and path
  // follows it, so whether a subnormal activation counts never depends on the variant or on M (results still
  // differ by the rounding of their sums). fp16 subnormals are kept.
  void (*to_f32)(const void* src, ActDType dtype, float* dst, int64_t n);
  // fp32 -> activation dtype, round to nearest even, optionally adding an fp32 bias first.
  void (*from_f32)(const float* src, const float* bias, void* dst, ActDType dtype, int64_t n);

  // k in [k0, k0 + kc) of one packed panel widened to fp32 dst[kc][16], exact and unscaled: the caller applies
  // the per-column scale once to the finished dot products (as the decode kernels do).
  void (*widen_a16w8)(const uint8_t* panel, int64_t k0, int64_t kc, float* dst);
  // Dequantize k in [k0, k0 + kc) of one packed panel to fp32 dst[kc][16].
  // int4 nibbles q (0..15) widened to fp32, exact, without scale or zero point (the caller folds those per
  // group, as the decode kernels do); k0 and kc are even, the chunk may span several groups or part of one.
  // `offsets`: the panel holds float offsets (its group header is kA16W4OffsetHeader bytes).
  void (*widen_a16w4)(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, float* dst);

  // Decode (m <= kGemvRows): weights are read straight from the packed panel, never written out.
  // a16w8: c[i][0:16] = (x[i] . q[:, 0:16]) * scale.
  void (*gemv_a16w8)(const uint8_t* panel, int64_t K, const float* x, int64_t ldx, int64_t m, float* c);
  // a16w4: c[i][0:16] = sum over groups of scale * (x[i] . q - zero * xsum[i][group]); the zero point is
  // folded into the per-group activation sums, so the inner loop is nibble -> float -> fma. With float
  // offsets (`offsets`), each group adds scale * (x[i] . q) + offset * xsum[i][group] instead. Every variant
  // evaluates both as c = fma(offset, xsum, fma(scale, fnmadd(zero, xsum, dot), c)) with offset = 0 for zero
  // points and zero = 0 for offsets: the integer form keeps its exact rounding (a zero product adds exactly
  // nothing), and folding -scale * zero into an offset (one more rounding) is never needed.
  void (*gemv_a16w4)(const uint8_t* panel, int64_t K, int64_t group, bool offsets, const float* x, int64_t ldx,
                     const float* xsum, int64_t m, float* c);

  // c[i][0:16] (+)= a[i][0:kc] . b[0:kc][0:16] for i < m; a has row stride lda, c is dense [m][16].
  void (*gemm_f32_panel)(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t m,
                         bool accumulate);
  // The tiled path of one K-chunk, fused: the result of widen_a16w8 of [k0, k0 + kc) into tile[kc][16]
  // followed by gemm_f32_panel(a, lda, tile, kc, c, m, accumulate), rounding for rounding; tile is scratch
  // (a variant may leave it unwritten when it does not need it).
  void (*gemm_a16w8_chunk)(const uint8_t* panel, int64_t k0, int64_t kc, const float* a, int64_t lda, float* c,
                           int64_t m, bool accumulate, float* tile);
  // Same for a16w4 on a chunk inside one group: widen_a16w4 then gemm_f32_panel into g (accumulating unless k0
  // starts the group); when the chunk ends the group, its zero point and scale are folded into the output:
  // c[i][j] += s[j] * (g[i][j] - z[j] * xsum[i * ldxs]) (xsum: that group's sums of the rows of x), or with
  // float offsets c[i][j] += s[j] * g[i][j] + o[j] * xsum[i * ldxs] (the same fma chain as gemv_a16w4).
  void (*gemm_a16w4_chunk)(const uint8_t* panel, int64_t group, bool offsets, int64_t k0, int64_t kc, const float* a,
                           int64_t lda, const float* xsum, int64_t ldxs, float* g, float* c, int64_t m, float* tile);

  // One activation row -> int8 (per-row symmetric, amax / 127, round half to even), zero-padded to K4.
  // A row with a NaN or Inf gets scale NaN, so its outputs are NaN rather than a silent finite value.
  void (*quantize_row_s8)(const float* x, int64_t K, int64_t K4, int8_t* xq, float* scale);
  // c[i][0:16] = sum_k a[i][k] * w[k][0:16] in int32, for i < m; a has row stride lda (>= K4); K <= kMaxK8.
  void (*gemm_s8_panel)(const int8_t* a, int64_t lda, const int8_t* w, int64_t K4, int32_t* c, int64_t m);
};

}  // namespace lowbit::cpu
