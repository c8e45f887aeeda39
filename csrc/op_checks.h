// The argument checks and output handling that every backend's torch bindings share (csrc/cpu/registration.cpp,
// sycl/registration.cpp), so a bad argument gets the same message, in the same order, on every device;
// python/lowbit/_opmeta.py mirrors them for the fake kernels. Each backend adds what differs there: devices,
// contiguity, its packed layout's shape, and its own limits (the SYCL kernels index with 32-bit ints).
#pragma once

#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

namespace lowbit::checks {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;

// Largest K of da8w8: K products of an activation in -127..127 and any int8 weight (-128 included) must sum
// within int32 in both signs: 127 * 128 * K <= 2^31 - 1.
constexpr int64_t kMaxK8 = INT32_MAX / (127 * 128);
// Largest group size of da8w4: a group's sum of (q - z) * xq, |q - z| <= 15 and |xq| <= 127, must fit int32:
// 15 * 127 * g <= 2^31 - 1.
constexpr int64_t kMaxGroupDA8W4 = INT32_MAX / (15 * 127);

// ---------------------------------------------------------------- the modes, as the checks see them
// (python/lowbit/modes.py describes each mode fully; these are the facts the bindings check)
struct Mode {
  const char* name;
  bool int4;               // int4 group-wise weights taking a group_size (else int8 per output channel)
  int64_t group_multiple;  // int4: group_size must be a positive multiple of it (a16w4: any even size)
  int64_t max_group;       // int4: largest group size, 0 = none
  int64_t max_k;           // largest K, 0 = none
  const char* limit;       // why max_group / max_k are what they are
  bool float_offsets;      // int4: also takes float32 offsets (w = scale * q + offset) in place of zero points
};

inline constexpr Mode kModes[] = {
    {"a16w8", false, 0, 0, 0, "", false},
    {"a16w4", true, 2, 0, 0, "", true},
    {"da8w8", false, 0, 0, kMaxK8, "int32 accumulation", false},
    {"da8w4", true, 8, kMaxGroupDA8W4, 0, "int32 group sums", false},
};

inline const Mode& mode(const char* name) {
  for (const Mode& m : kModes)
    if (std::strcmp(m.name, name) == 0) return m;
  STD_TORCH_CHECK(false, "lowbit: unknown mode ", name);
  return kModes[0];
}

// ---------------------------------------------------------------- arguments

inline void check_dtype(const Tensor& t, ScalarType want, const char* name, const char* what) {
  STD_TORCH_CHECK(t.scalar_type() == want, "lowbit: ", name, " must be ", what, ", got dtype ",
                  torch::headeronly::toString(t.scalar_type()));
}

// An int4 mode's group size: a positive multiple of what its kernels need, within its integer bound, dividing K.
inline void check_group(int64_t K, int64_t group_size, const Mode& m) {
  if (m.group_multiple == 2) {
    STD_TORCH_CHECK(group_size > 0 && group_size % 2 == 0,
                    "lowbit: group_size must be a positive even number, got ", group_size);
  } else {
    STD_TORCH_CHECK(group_size > 0 && group_size % m.group_multiple == 0, "lowbit: ", m.name,
                    " needs group_size to be a positive multiple of ", m.group_multiple, ", got ", group_size);
  }
  STD_TORCH_CHECK(m.max_group == 0 || group_size <= m.max_group, "lowbit: ", m.name, " supports group_size <= ",
                  m.max_group, " (", m.limit, "), got group_size = ", group_size);
  STD_TORCH_CHECK(K % group_size == 0, "lowbit: K = ", K, " is not divisible by group_size = ", group_size);
}

inline void check_k_bound(int64_t K, const Mode& m) {
  STD_TORCH_CHECK(m.max_k == 0 || K <= m.max_k, "lowbit: ", m.name, " supports K <= ", m.max_k, " (", m.limit,
                  "), got K = ", K);
}

// int8 [N, K] weight + float32 [N] scales (a16w8, da8w8).
inline void check_int8_weight(const Tensor& weight, const Tensor& scales, const Mode& m) {
  check_dtype(weight, ScalarType::Char, "weight", "int8 [N, K]");
  check_dtype(scales, ScalarType::Float, "scales", "float32 [N]");
  STD_TORCH_CHECK(weight.dim() == 2 && weight.size(0) > 0 && weight.size(1) > 0,
                  "lowbit: weight must be a non-empty 2-D [N, K] tensor");
  STD_TORCH_CHECK(scales.dim() == 1 && scales.size(0) == weight.size(0), "lowbit: scales must have shape [N] = [",
                  weight.size(0), "]");
  check_k_bound(weight.size(1), m);
}

struct Int4Shape {
  int64_t N, K, groups;
};

// uint8 [N, K/2] weight + float32 [N, K/g] scales + optional zeros [N, K/g] (a16w4, da8w4): uint8 zero points
// (w = scale * (q - zero)), or for a mode with that form float32 offsets (w = scale * q + offset); the range of
// the zero points and the finiteness of the offsets are checked by the backend, where the data lives.
inline Int4Shape check_int4_weight(const Tensor& weight, const Tensor& scales, const std::optional<Tensor>& zeros,
                                   int64_t group_size, const Mode& m) {
  check_dtype(weight, ScalarType::Byte, "weight", "uint8 [N, K/2] (two int4 per byte)");
  check_dtype(scales, ScalarType::Float, "scales", "float32 [N, K/group_size]");
  STD_TORCH_CHECK(weight.dim() == 2 && weight.size(0) > 0 && weight.size(1) > 0,
                  "lowbit: weight must be a non-empty 2-D [N, K/2] tensor");
  const int64_t N = weight.size(0), K = weight.size(1) * 2;
  check_group(K, group_size, m);
  const int64_t groups = K / group_size;
  STD_TORCH_CHECK(scales.dim() == 2 && scales.size(0) == N && scales.size(1) == groups,
                  "lowbit: scales must have shape [N, K/group_size] = [", N, ", ", groups, "]");
  if (zeros) {
    if (m.float_offsets) {
      STD_TORCH_CHECK(zeros->scalar_type() == ScalarType::Byte || zeros->scalar_type() == ScalarType::Float,
                      "lowbit: zeros must be uint8 zero points in 0..15 or float32 offsets, [N, K/group_size], got "
                      "dtype ", torch::headeronly::toString(zeros->scalar_type()));
    } else {
      check_dtype(*zeros, ScalarType::Byte, "zeros", "uint8 [N, K/group_size] in 0..15");
    }
    STD_TORCH_CHECK(zeros->dim() == 2 && zeros->size(0) == N && zeros->size(1) == groups,
                    "lowbit: zeros must have shape [N, K/group_size] = [", N, ", ", groups, "]");
  }
  return {N, K, groups};
}

// What a linear op checks of K and group_size before anything else, whoever packed its weight: the int4 modes'
// even K and group size, and the integer bounds of the mode.
inline void check_linear_k(const Mode& m, int64_t K, int64_t group_size) {
  if (m.int4) {
    STD_TORCH_CHECK(K % 2 == 0, "lowbit: ", m.name, " needs an even K = x.size(-1), got ", K);
    check_group(K, group_size, m);
  }
  check_k_bound(K, m);
}

// The checks of x, packed_weight and out_features every linear op makes after its device checks; returns K.
// (Activation dtypes are checked by the caller, which maps them to its kernels' types.)
inline int64_t check_linear_args(const Tensor& x, const Tensor& packed, int64_t N) {
  check_dtype(packed, ScalarType::Byte, "packed_weight", "uint8 (from lowbit.ops.pack_*)");
  STD_TORCH_CHECK(x.dim() >= 1, "lowbit: x must have at least one dimension [..., K]");
  STD_TORCH_CHECK(N > 0, "lowbit: out_features must be positive, got ", N);
  return x.size(x.dim() - 1);
}

// No packed weight has K = 0 (packing rejects empty weights); without this, a hand-made packing shaped for K = 0
// would pass the size checks and the op would return its output unwritten.
inline void check_k_positive(int64_t K) {
  STD_TORCH_CHECK(K > 0, "lowbit: x.size(-1) = K must be positive, got 0");
}

inline const char* activation_dtype_error() { return "lowbit: x must be bfloat16, float16 or float32, got dtype "; }

inline void check_bias(const Tensor& x, const Tensor& bias, int64_t N) {
  STD_TORCH_CHECK(bias.scalar_type() == x.scalar_type(), "lowbit: bias must have x's dtype (",
                  torch::headeronly::toString(x.scalar_type()), "), got ",
                  torch::headeronly::toString(bias.scalar_type()));
  STD_TORCH_CHECK(bias.dim() == 1 && bias.size(0) == N, "lowbit: bias must have shape [out_features] = [", N, "]");
}

// Raises the error for a packed weight whose per-panel size `got` is not what (mode, K, group_size) needs, naming
// the argument that is most likely wrong: a packing of another int8 mode for this K (packed_weight), of another
// group size for this K, in either int4 form (group_size), else of another in_features (x.size(-1)).
// size_of(mode, K, g, offsets) is the backend's per-panel size of a packing (g and offsets: int4 modes only).
template <class SizeOf>
[[noreturn]] void packed_size_mismatch(int64_t got, const Mode& m, int64_t K, int64_t group_size,
                                       const SizeOf& size_of) {
  if (!m.int4) {
    for (const Mode& other : kModes) {
      STD_TORCH_CHECK(&other == &m || other.int4 || size_of(other.name, K, 0, false) != got,
                      "lowbit: packed_weight has the size of pack_", other.name, "'s packing for K = ", K,
                      ", not of pack_", m.name, "'s: linear_", m.name, " needs a weight packed by pack_", m.name);
    }
  } else if (K > 0 && K % 2 == 0) {
    for (int64_t g = m.group_multiple; g <= K; g += m.group_multiple) {
      const bool other_group = K % g == 0 && (size_of(m.name, K, g, false) == got ||
                                              (m.float_offsets && size_of(m.name, K, g, true) == got));
      STD_TORCH_CHECK(!other_group, "lowbit: group_size = ", group_size,
                      " does not match packed_weight, whose size is that of group_size = ", g, " for K = ", K);
    }
  }
  STD_TORCH_CHECK(false, "lowbit: x.size(-1) = ", K, " does not match the in_features packed_weight was packed for (",
                  m.name, ")");
  __builtin_unreachable();
}

// ---------------------------------------------------------------- outputs

// LOWBIT_DEBUG_POISON=1 fills every output with NaN before the kernels run, so a test sees any element a kernel
// forgot to write (fresh allocations are often zero and would hide it). Read once.
inline bool poison_outputs() {
  static const bool on = [] {
    const char* v = std::getenv("LOWBIT_DEBUG_POISON");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

// The output [..., N] of a linear op on x [..., K], in x's dtype and on its device (poisoned when asked).
inline Tensor new_output(const Tensor& x, int64_t N) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  Tensor out = torch::stable::new_empty(x, shape);
  if (poison_outputs() && out.numel() > 0) torch::stable::fill_(out, std::numeric_limits<double>::quiet_NaN());
  return out;
}

}  // namespace lowbit::checks
