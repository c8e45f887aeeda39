// Shared by every lowbit SYCL kernel source (the host library hands it to the run-time compiler as the
// include file "lowbit_common.h"). No device-library functions are used anywhere (the runtime wheels lack
// their bitcode, and kernels build with -fno-sycl-device-lib=all): bf16 is handled as raw uint16_t bits.
#pragma once

// Only the SYCL headers the kernels use, not <sycl/sycl.hpp>: the run-time compiler parses them for every source
// it builds, and the narrow set measured about 2.5 s less per cold build (a one-kernel source: 4.5 s -> 2.0 s;
// a16w4.sycl: 7.9 s -> 5.5 s).
#include <sycl/bit_cast.hpp>
#include <sycl/builtins.hpp>
#include <sycl/ext/oneapi/free_function_queries.hpp>
#include <sycl/ext/oneapi/kernel_properties/properties.hpp>
#include <sycl/ext/oneapi/work_group_static.hpp>
#include <sycl/functional.hpp>
#include <sycl/group_algorithm.hpp>
#include <sycl/group_barrier.hpp>
#include <sycl/half_type.hpp>
#include <sycl/nd_item.hpp>

#include <cstdint>

namespace syclexp = sycl::ext::oneapi::experimental;

// The host builds each source once per activation dtype with -DLOWBIT_DTYPE=1 (F32), 2 (F16) or 3 (BF16), so a
// first call compiles only its dtype's kernels (sycl/runtime.cpp); without it every dtype is built.
#define LOWBIT_DTYPE_F32 1
#define LOWBIT_DTYPE_F16 2
#define LOWBIT_DTYPE_BF16 3
#ifndef LOWBIT_DTYPE
#define LOWBIT_DTYPE 0
#endif
#define LOWBIT_WANT(DT) (LOWBIT_DTYPE == 0 || LOWBIT_DTYPE == LOWBIT_DTYPE_##DT)

#define LOWBIT_ND_RANGE_KERNEL extern "C" SYCL_EXT_ONEAPI_FUNCTION_PROPERTY((syclexp::nd_range_kernel<1>)) void
// 2-D kernels: dimension 1 (the fastest-varying one) is the output column n, so a sub-group's lanes are
// consecutive columns by construction (the index is get_global_id(1), not a division or modulo of a linear id,
// so the compiler can see that neighbouring lanes load neighbouring words); dimension 0 is the row block.
#define LOWBIT_ND_RANGE_KERNEL_2D extern "C" SYCL_EXT_ONEAPI_FUNCTION_PROPERTY((syclexp::nd_range_kernel<2>)) void

namespace lowbit {

// Packed weights are panels of kPanel output columns: uint32 words [ceil(N / kPanel)][rows][kPanel] (pack.sycl).
// A work-group of the rows path is one panel: its lanes read kPanel consecutive words (256 bytes) per row, and
// the whole panel is one contiguous stream over K (a [rows][N] matrix would make every row a jump of 4N bytes:
// a new page per row on the CPU device, which measured about 1.7x slower when memory-bound).
constexpr int kPanel = 64;

// Code-generation rules of the run-time compiler, measured on the CPU device (OpenCL CPU runtime 2025.3, AVX2, on
// a 2-core Zen 4 VM whose vector FMA throughput measured about 1 per ns per core):
// - every kernel here is vectorized across work-items (8 lanes of the innermost dimension), with or without
//   barriers: turning the vectorizer off (CL_CONFIG_USE_VECTORIZER=False) makes the rows kernels about 3.5x
//   slower. (The vector bodies of barrier-free kernels keep the scalar kernel's name in CL_CONFIG_DUMP_ASM
//   output, which once made them look scalar; only kernels with barriers get a separate _ZGV... variant.)
// - so the cost is vector instructions per weight word, not bandwidth: the decode kernels are built to spend
//   as few as possible per word (a16w4: 3 per nibble), and to make every activation a single broadcast load of
//   an fp32 value from a prepass (a bf16 activation costs load + shift + move + broadcast per lane group);
// - a weight address must be visibly consecutive across lanes (group id * panel + local id); one computed as
//   n / kPanel, n % kPanel turned every weight load into 8 scalar inserts;
// - the work-items of a work-group run one vector of 8 lanes after the other, each vector through the whole
//   kernel: with one column per work-item and 64-lane groups, each vector walks its panel at a 256-byte stride
//   (32 of every 256 bytes), which measured 1.5x slower single-threaded than a vector walking it as one
//   sequential stream (the decode kernels' cols8 variant below, and the reason for it);
// - int8 -> float: sign extension (shift left, arithmetic shift right) then a conversion is 3 instructions a
//   byte; leaving the byte in place at the top of the word (byte_in_place: one shift and/or AND, then the
//   conversion) measured 20% faster for the whole a16w8 and da8w8 decode kernels;
// - private arrays and sycl::vec in the inner loops stay in memory (2-4x slower than named scalars), so the
//   kernels keep accumulators and dequantized values in named scalars;
// - an activation pointer computed through sycl::min / sycl::max made the rows kernel 2.3x slower than the
//   same pointer computed with a plain comparison (imin below).
// On Xe the same sources map work-items to SIMD lanes as written.

// The CPU device's decode variant ("cols8" kernels, M = 1): a work-item owns kDecodeCols columns of one panel
// (local id + 8 j), and a work-group is kDecodeLanes = 8 work-items: one vector of lanes on the CPU device, whose
// loads per k step are a whole 256-byte panel row, so the panel is read as one sequential stream; each activation
// load also serves 8 columns. Each column keeps a named accumulator (LOWBIT_EACH_COL expands a macro per column).
// On a GPU the one-column kernels are used instead (N work-items, 64-lane groups: a 256-byte row per sub-group).
constexpr int kDecodeCols = 8, kDecodeLanes = kPanel / kDecodeCols;
#define LOWBIT_EACH_COL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

inline sycl::nd_item<1> item() { return sycl::ext::oneapi::this_work_item::get_nd_item<1>(); }
inline sycl::nd_item<2> item2() { return sycl::ext::oneapi::this_work_item::get_nd_item<2>(); }

inline int imin(int a, int b) { return a < b ? a : b; }

// ---- activation dtypes: storage type, widening load, rounding store (round to nearest even)
struct F32 {
  using T = float;
  static float load(const T* p) { return *p; }
  static void store(T* p, float v) { *p = v; }
};

struct F16 {
  using T = sycl::half;
  static float load(const T* p) { return float(*p); }
  static void store(T* p, float v) { *p = sycl::half(v); }
};

struct BF16 {
  using T = uint16_t;  // the bits of a bfloat16: exactly the high half of an fp32
  // activations: subnormals read as signed zero, as on the CPU (whose bf16 dot-product instruction does so)
  static float load(const T* p) {
    const uint32_t h = *p;
    return sycl::bit_cast<float>(((h & 0x7f80u) != 0 ? h : h & 0x8000u) << 16);
  }
  static void store(T* p, float v) {
    const uint32_t u = sycl::bit_cast<uint32_t>(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a (quiet) NaN, as torch does
      *p = uint16_t(0x7fc0u | ((u >> 16) & 0x8000u));
      return;
    }
    *p = uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
};

// ---- int4 / int8 helpers
// (float)(q - z) for a nibble q in 0..15 without an int->float conversion: 0x4B000000 | q is the float
// 2^23 + q exactly, and subtracting zb = 2^23 + z (precomputed once per group) leaves q - z exactly.
constexpr float kMagic = 8388608.0f;  // 2^23
inline float nibble_minus_zero(uint32_t word, int j, float zb) {
  return sycl::bit_cast<float>(0x4B000000u | ((word >> (4 * j)) & 15u)) - zb;
}

inline float byte_s8(uint32_t word, int j) { return float(int8_t(word >> (8 * j))); }

// Signed byte j (0..3) of a word moved to the top of the word and converted: q * 2^24 as a float, exactly (8
// significant bits; the sign is the word's top bit, so no sign extension): one shift and/or one AND, and one
// conversion. Paired with activations prescaled by kByteScale = 2^-24 (a16w8), the product is exactly q * x; an
// fp32 activation below 2^-102 in magnitude loses bits to the prescale (a contribution under 2^-95 |q|).
constexpr float kByteScale = 0x1p-24f;
inline float byte_in_place(uint32_t word, int j) {
  return float(int32_t((word << (24 - 8 * j)) & 0xff000000u));
}
// da8w8 accumulates (q * 2^24) * x_q (x_q an integer in -127..127, as fp32) in fp32, exactly: every partial sum is
// an integer times 2^24 whose integer part stays below 2^24 as long as a chain sums at most 1032 products
// (|q x_q| <= 128 * 127). A chain of at most 4 products a word therefore runs kExactWords words, then is added
// to an int32 accumulator (times 2^-24: exact) and restarts.
constexpr int kExactWords = 256;

// Nibble j (0..3) of `half` left in place: q * 16^j as a float, exactly (q * 16^j < 2^16), with one AND and one
// int->float conversion. The decode kernels pair it with an activation prescaled by 16^-j (prescale_a16w4), so the
// product is exactly q * x; nibbles 4..7 of a word are nibbles 0..3 of word >> 16.
inline float nibble_in_place(uint32_t half, int j) { return float(int32_t(half & (15u << (4 * j)))); }
inline float nibble_in_place_k(uint32_t word, int k) {  // nibble k & 7 of a word, any k
  const int j = k & 7;
  return nibble_in_place(j < 4 ? word : word >> 16, j & 3);
}
// 16^-(k % 4): the prescale of activation k for nibble_in_place (powers of two: exact).
inline float prescale_a16w4(int k) { return sycl::bit_cast<float>(uint32_t(127 - 4 * (k & 3)) << 23); }

// acc + q0 x0 + q1 x1 + q2 x2 + q3 x3, as a chain of fmas in k order.
inline float dot4(float q0, float q1, float q2, float q3, float x0, float x1, float x2, float x3, float acc) {
  return sycl::fma(q3, x3, sycl::fma(q2, x2, sycl::fma(q1, x1, sycl::fma(q0, x0, acc))));
}

// Dot product of the four int8 lanes of two words, in int32 (the scalar form of dp4a / VNNI).
inline int32_t dot4_s8(uint32_t a, uint32_t b) {
  return int32_t(int8_t(a)) * int8_t(b) + int32_t(int8_t(a >> 8)) * int8_t(b >> 8) +
         int32_t(int8_t(a >> 16)) * int8_t(b >> 16) + int32_t(int8_t(a >> 24)) * int8_t(b >> 24);
}

// ---- per-token int8 quantization of activations (da8w8, da8w4): lowbit.reference.quantize_activation_per_token,
// bit for bit. Every work-item of a work-group calls token_quant for the same row (two group reductions: amax,
// and whether the row holds a NaN or Inf, which makes its scale NaN and its quantized values 0).
struct TokenQuant {
  float boost, inv, scale;
  bool on;  // false for a zero row and a row with a NaN or Inf
  // round half to even of x * (127 / amax), clamped; kept as two multiplications in this order (x * boost is
  // exact, a power of two; boost * inv could overflow)
  float quantize(float x) const { return on ? sycl::clamp(sycl::rint(x * boost * inv), -127.0f, 127.0f) : 0.0f; }
};

template <class Act, class Group>
TokenQuant token_quant(const Group& group, const typename Act::T* x, int K, int lid, int threads) {
  float amax = 0.0f;
  int nonfinite = 0;
  for (int k = lid; k < K; k += threads) {
    const uint32_t bits = sycl::bit_cast<uint32_t>(Act::load(x + k)) & 0x7fffffffu;  // |x|
    nonfinite |= bits >= 0x7f800000u;
    amax = sycl::max(amax, sycl::bit_cast<float>(bits));
  }
  amax = sycl::reduce_over_group(group, amax, sycl::maximum<float>());
  nonfinite = sycl::reduce_over_group(group, nonfinite, sycl::maximum<int>());
  // A true division, as the reference (127 / amax, not 127 * (1 / amax)); a zero row keeps q = 0. Below
  // amax = 2^-120, 127 / amax would overflow: the row is multiplied by 2^64 first (exact), as the CPU kernels do.
  const float boost = amax < 0x1p-120f ? 0x1p64f : 1.0f;
  return {boost, 127.0f / (amax > 0.0f ? amax * boost : 1.0f),
          nonfinite ? sycl::bit_cast<float>(0x7fc00000u) : amax / 127.0f, amax > 0.0f && !nonfinite};
}

// ---- the tiled (large M) path: one work-group computes a kTileM x kTileN block of y, stepping through K
// kTileK at a time; each step stages the activation tile and the dequantized weight tile in local memory.
// A work-group is 2-D: local id 1 = the column lane (consecutive lanes read consecutive local words), local id 0
// = which kRowsPerItem rows; kTileM / kRowsPerItem x kTileN = 8 x 32 = 256 work-items. Group ids: (row tile,
// column tile); a 32-column tile lies inside one 64-column panel.
constexpr int kTileM = 32, kTileN = 32, kTileK = 32, kRowsPerItem = 4;
constexpr int kTileThreads = kTileN * kTileM / kRowsPerItem;
static_assert(kPanel % kTileN == 0, "a tile must not straddle two panels");

// Word (r, n) of a packed weight with `rows` rows per panel.
inline size_t word_index(int rows, int r, int n) {
  return (size_t(n / kPanel) * rows + r) * kPanel + n % kPanel;
}

}  // namespace lowbit
