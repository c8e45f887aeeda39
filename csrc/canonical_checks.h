// Checks of the canonical weight formats and op arguments that every backend's torch bindings share
// (csrc/cpu/registration.cpp, sycl/registration.cpp), so a bad argument gets the same message on every device.
// Device and contiguity checks stay with each backend: what is acceptable there differs.
#pragma once

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <string>

namespace lowbit::checks {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

// Largest K of da8w8: K products of an activation in -127..127 and any int8 weight (-128 included) must sum
// within int32 in both signs: 127 * 128 * K <= 2^31 - 1.
constexpr int64_t kMaxK8 = INT32_MAX / (127 * 128);

inline void check_dtype(const Tensor& t, ScalarType want, const char* name, const char* what) {
  STD_TORCH_CHECK(t.scalar_type() == want, "lowbit: ", name, " must be ", what, ", got dtype ",
                  torch::headeronly::toString(t.scalar_type()));
}

inline void check_group(int64_t K, int64_t group_size) {
  STD_TORCH_CHECK(group_size > 0 && group_size % 2 == 0, "lowbit: group_size must be a positive even number, got ",
                  group_size);
  STD_TORCH_CHECK(K % group_size == 0, "lowbit: K = ", K, " is not divisible by group_size = ", group_size);
}

// Largest group size of da8w4: a group's sum of (q - z) * xq, |q - z| <= 15 and |xq| <= 127, must fit int32:
// 15 * 127 * g <= 2^31 - 1.
constexpr int64_t kMaxGroupDA8W4 = INT32_MAX / (15 * 127);

// da8w4's group size: a positive multiple of 8 (one packed weight row holds 8 k) dividing K, within the int32
// bound. Per channel is group_size = K (so K must then be a multiple of 8).
inline void check_da8w4_group(int64_t K, int64_t group_size) {
  STD_TORCH_CHECK(group_size > 0 && group_size % 8 == 0,
                  "lowbit: da8w4 needs group_size to be a positive multiple of 8, got ", group_size);
  STD_TORCH_CHECK(group_size <= kMaxGroupDA8W4, "lowbit: da8w4 supports group_size <= ", kMaxGroupDA8W4,
                  " (int32 group sums), got group_size = ", group_size);
  STD_TORCH_CHECK(K % group_size == 0, "lowbit: K = ", K, " is not divisible by group_size = ", group_size);
}

inline void check_da8w8_k(int64_t K) {
  STD_TORCH_CHECK(K <= kMaxK8, "lowbit: da8w8 supports K <= ", kMaxK8, " (int32 accumulation), got K = ", K);
}

// int8 [N, K] weight + float32 [N] scales (a16w8, da8w8).
inline void check_int8_weight(const Tensor& weight, const Tensor& scales) {
  check_dtype(weight, ScalarType::Char, "weight", "int8 [N, K]");
  check_dtype(scales, ScalarType::Float, "scales", "float32 [N]");
  STD_TORCH_CHECK(weight.dim() == 2 && weight.size(0) > 0 && weight.size(1) > 0,
                  "lowbit: weight must be a non-empty 2-D [N, K] tensor");
  STD_TORCH_CHECK(scales.dim() == 1 && scales.size(0) == weight.size(0), "lowbit: scales must have shape [N] = [",
                  weight.size(0), "]");
}

struct Int4Shape {
  int64_t N, K, groups;
};

// uint8 [N, K/2] weight + float32 [N, K/g] scales + optional zeros [N, K/g] (a16w4): uint8 zero points
// (w = scale * (q - zero)) or float32 offsets (w = scale * q + offset); the range of the zero points and the
// finiteness of the offsets are checked by the backend, where the data lives.
inline Int4Shape check_int4_weight(const Tensor& weight, const Tensor& scales, const std::optional<Tensor>& zeros,
                                   int64_t group_size) {
  check_dtype(weight, ScalarType::Byte, "weight", "uint8 [N, K/2] (two int4 per byte)");
  check_dtype(scales, ScalarType::Float, "scales", "float32 [N, K/group_size]");
  STD_TORCH_CHECK(weight.dim() == 2 && weight.size(0) > 0 && weight.size(1) > 0,
                  "lowbit: weight must be a non-empty 2-D [N, K/2] tensor");
  const int64_t N = weight.size(0), K = weight.size(1) * 2;
  check_group(K, group_size);
  const int64_t groups = K / group_size;
  STD_TORCH_CHECK(scales.dim() == 2 && scales.size(0) == N && scales.size(1) == groups,
                  "lowbit: scales must have shape [N, K/group_size] = [", N, ", ", groups, "]");
  if (zeros) {
    STD_TORCH_CHECK(zeros->scalar_type() == ScalarType::Byte || zeros->scalar_type() == ScalarType::Float,
                    "lowbit: zeros must be uint8 zero points in 0..15 or float32 offsets, [N, K/group_size], got "
                    "dtype ", torch::headeronly::toString(zeros->scalar_type()));
    STD_TORCH_CHECK(zeros->dim() == 2 && zeros->size(0) == N && zeros->size(1) == groups,
                    "lowbit: zeros must have shape [N, K/group_size] = [", N, ", ", groups, "]");
  }
  return {N, K, groups};
}

// Raises the error for a packed weight whose per-panel size `got` is not what (mode, K, group_size) needs, naming
// the argument that is most likely wrong: a packing of the other int8 mode for this K (packed_weight), of another
// group size for this K (group_size), else of another in_features (x.size(-1)). size_of(mode, K, g) is the
// backend's per-panel size of a packing (g is used by "a16w4" only).
template <class SizeOf>
[[noreturn]] void packed_size_mismatch(int64_t got, const char* mode, int64_t K, int64_t group_size,
                                       const SizeOf& size_of) {
  const std::string m = mode;
  if (m == "a16w8" || m == "da8w8") {
    const char* other = m == "a16w8" ? "da8w8" : "a16w8";
    STD_TORCH_CHECK(size_of(other, K, 0) != got, "lowbit: packed_weight has the size of pack_", other,
                    "'s packing for K = ", K, ", not of pack_", mode, "'s: linear_", mode,
                    " needs a weight packed by pack_", mode);
  } else if (K > 0 && K % 2 == 0) {  // a16w4, da8w4: group sizes are even (a16w4) or multiples of 8 (da8w4)
    const int64_t step = m == "da8w4" ? 8 : 2;
    for (int64_t g = step; g <= K; g += step) {
      STD_TORCH_CHECK(K % g != 0 || size_of(mode, K, g) != got, "lowbit: group_size = ", group_size,
                      " does not match packed_weight, whose size is that of group_size = ", g, " for K = ", K);
    }
  }
  STD_TORCH_CHECK(false, "lowbit: x.size(-1) = ", K, " does not match the in_features packed_weight was packed for (",
                  mode, ")");
  __builtin_unreachable();
}

}  // namespace lowbit::checks
