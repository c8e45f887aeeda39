// Torch bindings of the CPU kernels: argument checks, allocation, threading. Everything numeric happens in
// the torch-free code under kernels/.
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "op_checks.h"
#include "cpu/kernels/da8w4.h"
#include "cpu/kernels/generic/generic.h"
#include "cpu/kernels/isa.h"
#include "cpu/kernels/linear.h"
#include "cpu/kernels/pack.h"

namespace {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;
namespace lc = lowbit::cpu;
namespace checks = lowbit::checks;
using checks::check_int4_weight;

static_assert(lc::kMaxK8 == lowbit::checks::kMaxK8, "the kernels and the checks must agree on da8w8's K bound");
static_assert(lc::kMaxGroupDA8W4 == lowbit::checks::kMaxGroupDA8W4,
              "the kernels and the checks must agree on da8w4's group bound");

void check_cpu_contiguous(const Tensor& t, const char* name) {
  STD_TORCH_CHECK(t.is_cpu(), "lowbit: ", name, " must be a CPU tensor (this is the CPU implementation)");
  STD_TORCH_CHECK(t.is_contiguous(), "lowbit: ", name, " must be contiguous");
}

lc::ActDType act_dtype(const Tensor& x) {
  switch (x.scalar_type()) {
    case ScalarType::Float: return lc::ActDType::f32;
    case ScalarType::BFloat16: return lc::ActDType::bf16;
    case ScalarType::Half: return lc::ActDType::f16;
    default:
      STD_TORCH_CHECK(false, checks::activation_dtype_error(), torch::headeronly::toString(x.scalar_type()));
  }
  return lc::ActDType::f32;
}

// One contiguous range of work items per thread, on the ATen pool (honours torch.set_num_threads).
template <typename F>
void parallel(int64_t n, const F& f) {
  if (n > 0) torch::stable::parallel_for(0, n, 1, f);
}

// ---------------------------------------------------------------- packing

Tensor new_packed(int64_t N, int64_t panel_bytes, const Tensor& like) {
  return torch::stable::new_empty(like, {lc::num_panels(N), panel_bytes}, ScalarType::Byte);
}

void check_int8_weight(const Tensor& weight, const Tensor& scales, const char* mode) {
  check_cpu_contiguous(weight, "weight");
  check_cpu_contiguous(scales, "scales");
  checks::check_int8_weight(weight, scales, checks::mode(mode));
}

Tensor pack_a16w8(Tensor weight, Tensor scales) {
  check_int8_weight(weight, scales, "a16w8");
  const int64_t N = weight.size(0), K = weight.size(1);
  Tensor out = new_packed(N, lc::a16w8_panel_bytes(K), weight);
  auto w = weight.const_data_ptr<int8_t>();
  auto s = scales.const_data_ptr<float>();
  auto o = out.mutable_data_ptr<uint8_t>();
  parallel(lc::num_panels(N), [&](int64_t p0, int64_t p1) { lc::pack_a16w8(w, s, N, K, o, p0, p1); });
  return out;
}

Tensor pack_da8w8(Tensor weight, Tensor scales) {
  check_int8_weight(weight, scales, "da8w8");
  const int64_t N = weight.size(0), K = weight.size(1);
  Tensor out = new_packed(N, lc::da8w8_panel_bytes(K), weight);
  auto w = weight.const_data_ptr<int8_t>();
  auto s = scales.const_data_ptr<float>();
  auto o = out.mutable_data_ptr<uint8_t>();
  parallel(lc::num_panels(N), [&](int64_t p0, int64_t p1) { lc::pack_da8w8(w, s, N, K, o, p0, p1); });
  return out;
}

// The canonical int4 checks shared by pack_a16w4 and pack_da8w4; returns the zero points (null: symmetric, or
// float offsets). `offsets`: where float32 `zeros` (offsets, w = scale * q + offset) go for a mode that has that
// form (a16w4); null refuses them.
const uint8_t* check_int4_canonical(const Tensor& weight, const Tensor& scales, const std::optional<Tensor>& zeros,
                                    int64_t group_size, const char* mode, int64_t& N, int64_t& K,
                                    const float** offsets = nullptr) {
  check_cpu_contiguous(weight, "weight");
  check_cpu_contiguous(scales, "scales");
  if (zeros) check_cpu_contiguous(*zeros, "zeros");
  const auto shape = check_int4_weight(weight, scales, zeros, group_size, checks::mode(mode));
  N = shape.N, K = shape.K;
  if (!zeros) return nullptr;
  if (zeros->scalar_type() == ScalarType::Float) {
    STD_TORCH_CHECK(offsets != nullptr, "lowbit: zeros must be uint8 zero points in 0..15 here (float32 offsets are "
                    "an a16w4 form)");
    const float* o = zeros->const_data_ptr<float>();
    for (int64_t i = 0; i < N * shape.groups; ++i)
      STD_TORCH_CHECK(std::isfinite(o[i]), "lowbit: zeros (float32 offsets) must be finite, found ", o[i],
                      " at flat index ", i);
    *offsets = o;
    return nullptr;
  }
  const uint8_t* z = zeros->const_data_ptr<uint8_t>();
  for (int64_t i = 0; i < N * shape.groups; ++i)
    STD_TORCH_CHECK(z[i] <= 15, "lowbit: zeros must be in 0..15, found ", int(z[i]), " at flat index ", i);
  return z;
}

Tensor pack_a16w4(Tensor weight, Tensor scales, std::optional<Tensor> zeros, int64_t group_size) {
  int64_t N, K;
  const float* offsets = nullptr;
  const uint8_t* z = check_int4_canonical(weight, scales, zeros, group_size, "a16w4", N, K, &offsets);
  Tensor out = new_packed(N, lc::a16w4_panel_bytes(K, group_size, offsets != nullptr), weight);
  auto w = weight.const_data_ptr<uint8_t>();
  auto s = scales.const_data_ptr<float>();
  auto o = out.mutable_data_ptr<uint8_t>();
  parallel(lc::num_panels(N), [&](int64_t p0, int64_t p1) {
    if (offsets) lc::pack_a16w4_offsets(w, s, offsets, N, K, group_size, o, p0, p1);
    else lc::pack_a16w4(w, s, z, N, K, group_size, o, p0, p1);
  });
  return out;
}

Tensor pack_da8w4(Tensor weight, Tensor scales, std::optional<Tensor> zeros, int64_t group_size) {
  int64_t N, K;
  const uint8_t* z = check_int4_canonical(weight, scales, zeros, group_size, "da8w4", N, K);
  Tensor out = new_packed(N, lc::da8w4_panel_bytes(K, group_size), weight);
  auto w = weight.const_data_ptr<uint8_t>();
  auto s = scales.const_data_ptr<float>();
  auto o = out.mutable_data_ptr<uint8_t>();
  parallel(lc::num_panels(N),
           [&](int64_t p0, int64_t p1) { lc::pack_da8w4(w, s, z, N, K, group_size, o, p0, p1); });
  return out;
}

// ---------------------------------------------------------------- linear

struct Prepared {
  lc::LinearArgs args;
  Tensor out;
  std::vector<Tensor> keep_alive;  // temporaries too large for the scratch buffer
  size_t scratch_used = 0;
};

// Per-call temporaries (fp32 x and bias, quantized x) come from a buffer of the calling thread that is reused
// from call to call while they fit in it, so decoding a token allocates nothing but its output; larger ones
// (prefill) are torch tensors. 64-byte aligned.
constexpr size_t kScratchBytes = size_t(1) << 20;

char* scratch_buffer() {
  thread_local std::unique_ptr<char[]> raw(new char[kScratchBytes + 64]);
  const auto at = reinterpret_cast<uintptr_t>(raw.get());
  return raw.get() + ((64 - at % 64) % 64);
}

void* temporary(Prepared& p, const Tensor& like, int64_t bytes) {
  const size_t n = (size_t(bytes) + 63) / 64 * 64;
  if (p.scratch_used + n <= kScratchBytes) {
    void* at = scratch_buffer() + p.scratch_used;
    p.scratch_used += n;
    return at;
  }
  Tensor t = torch::stable::new_empty(like, {bytes}, ScalarType::Byte);
  p.keep_alive.push_back(t);
  return t.mutable_data_ptr();
}

// Per-panel bytes of a packing (mode, K, group size, a16w4's float-offset form).
int64_t panel_bytes(const char* mode, int64_t K, int64_t group_size, bool offsets) {
  const std::string m = mode;
  if (m == "a16w8") return lc::a16w8_panel_bytes(K);
  if (m == "da8w8") return lc::da8w8_panel_bytes(K);
  if (m == "da8w4") return lc::da8w4_panel_bytes(K, group_size);
  return lc::a16w4_panel_bytes(K, group_size, offsets);
}

// Every check of a linear op's arguments (op_checks.h, in the order _opmeta.check_linear mirrors), the output,
// and the args without the mode's own fields.
Prepared prepare(const Tensor& x, const Tensor& packed, int64_t N, const std::optional<Tensor>& bias,
                 const char* mode_name, int64_t group_size = 0, bool offsets = false) {
  const checks::Mode& mode = checks::mode(mode_name);
  const int64_t K_arg = x.dim() >= 1 ? x.size(x.dim() - 1) : 0;
  checks::check_linear_k(mode, K_arg, group_size);  // the mode's bounds, whoever packed the weight
  check_cpu_contiguous(x, "x");
  check_cpu_contiguous(packed, "packed_weight");
  const lc::ActDType dtype = act_dtype(x);
  const int64_t K = checks::check_linear_args(x, packed, N);
  checks::check_k_positive(K);
  STD_TORCH_CHECK(packed.dim() == 2 && packed.size(0) == lc::num_panels(N),
                  "lowbit: packed_weight does not hold out_features = ", N, " (expected ", lc::num_panels(N),
                  " panels of 16 columns, got shape [", packed.dim() > 0 ? packed.size(0) : 0, ", ...])");
  if (packed.size(1) != panel_bytes(mode_name, K, group_size, offsets))
    checks::packed_size_mismatch(packed.size(1), mode, K, group_size, panel_bytes);
  if (bias) {
    check_cpu_contiguous(*bias, "bias");
    checks::check_bias(x, *bias, N);
  }

  Prepared p;
  p.out = checks::new_output(x, N);
  auto& a = p.args;
  a.K = K;
  a.N = N;
  a.M = K == 0 ? 0 : x.numel() / K;
  a.packed = packed.const_data_ptr<uint8_t>();
  a.y = p.out.mutable_data_ptr();
  a.y_dtype = dtype;
  if (bias) {  // fp32, exactly (no flushing: that is for activations)
    if (dtype == lc::ActDType::f32) {
      a.bias = bias->const_data_ptr<float>();
    } else {
      auto* b = static_cast<float*>(temporary(p, x, N * 4));
      const auto* src = static_cast<const uint16_t*>(bias->const_data_ptr());
      for (int64_t n = 0; n < N; ++n)
        b[n] = dtype == lc::ActDType::bf16 ? lc::generic::bf16_to_f32(src[n]) : lc::generic::f16_to_f32(src[n]);
      a.bias = b;
    }
  }
  return p;
}

// x -> fp32 [M][K] (a no-op for fp32 input), rows converted in parallel. bf16 input also stays available as
// it is (LinearArgs::x_bf16), for the variants that multiply bf16 pairs.
const float* x_as_f32(const Tensor& x, Prepared& p) {
  if (x.scalar_type() == ScalarType::Float) return x.const_data_ptr<float>();
  if (x.scalar_type() == ScalarType::BFloat16) p.args.x_bf16 = static_cast<const uint16_t*>(x.const_data_ptr());
  const auto& a = p.args;
  const lc::KernelTable& kt = lc::active_kernels();
  const auto* src = static_cast<const char*>(x.const_data_ptr());
  auto* dst = static_cast<float*>(temporary(p, x, a.M * a.K * 4));
  const lc::ActDType dtype = act_dtype(x);
  const int64_t K = a.K;
  parallel(a.M, [&](int64_t r0, int64_t r1) { kt.to_f32(src + r0 * K * 2, dtype, dst + r0 * K, (r1 - r0) * K); });
  return dst;
}

// Rows too large for fp32 sums (lowbit::cpu::rows_to_prescale) are multiplied by 2^-64 into a copy, and the
// drivers multiply their output rows back: no intermediate overflows while the result is finite. Rare: the
// common case costs one pass over x.
const float* prescale_if_needed(const Tensor& x, Prepared& p, const float* xf) {
  auto& a = p.args;
  auto* row_scale = static_cast<float*>(temporary(p, x, a.M * 4));
  std::atomic<int64_t> rows{0};
  const int64_t K = a.K;
  parallel(a.M, [&](int64_t r0, int64_t r1) { rows += lc::rows_to_prescale(xf + r0 * K, r1 - r0, K, row_scale + r0); });
  if (rows == 0) return xf;
  auto* scaled = static_cast<float*>(temporary(p, x, a.M * a.K * 4));
  lc::prescale_rows(xf, row_scale, a.M, a.K, scaled);
  if (a.x_bf16 != nullptr) {  // the bf16 kernels read these: exact, 2^-64 times a bf16 value is a bf16 value
    auto* xb = static_cast<uint16_t*>(temporary(p, x, a.M * a.K * 2));
    for (int64_t i = 0; i < a.M * a.K; ++i) xb[i] = lc::generic::f32_to_bf16(scaled[i]);
    a.x_bf16 = xb;
  }
  a.row_scale = row_scale;
  return scaled;
}

Tensor linear_a16w8(Tensor x, Tensor packed, int64_t out_features, std::optional<Tensor> bias) {
  Prepared p = prepare(x, packed, out_features, bias, "a16w8");
  if (p.args.M == 0) return p.out;
  p.args.x = prescale_if_needed(x, p, x_as_f32(x, p));
  const lc::KernelTable& kt = lc::active_kernels();
  parallel(lc::num_panels(out_features),
           [&](int64_t p0, int64_t p1) { kt.linear_a16w8(kt, p.args, p0, p1); });
  return p.out;
}

Tensor linear_a16w4(Tensor x, Tensor packed, int64_t out_features, int64_t group_size,
                    std::optional<Tensor> bias) {
  const int64_t K = x.dim() >= 1 ? x.size(x.dim() - 1) : 0;
  // The packing's form: for a given (K, group_size), uint8 zero points (80 + 8g bytes per group and panel) and
  // float offsets (128 + 8g) never have the same size. A packing for another group size can still collide
  // (zero points at g = 10i, offsets at g = 16i): group_size must be the one the weight was packed with.
  const bool group_ok = K > 0 && K % 2 == 0 && group_size > 0 && group_size % 2 == 0 && K % group_size == 0;
  const bool offsets =
      group_ok && packed.dim() == 2 && packed.size(1) == lc::a16w4_panel_bytes(K, group_size, true);
  Prepared p = prepare(x, packed, out_features, bias, "a16w4", group_size, offsets);
  if (p.args.M == 0) return p.out;
  p.args.group = group_size;
  p.args.offsets = offsets;
  p.args.x = prescale_if_needed(x, p, x_as_f32(x, p));
  const lc::KernelTable& kt = lc::active_kernels();
  parallel(lc::num_panels(out_features),
           [&](int64_t p0, int64_t p1) { kt.linear_a16w4(kt, p.args, p0, p1); });
  return p.out;
}

// x -> per-row int8 (quantize_row_s8) and scales in the scratch, rows in parallel, after the pre-scaling of rows
// too large for fp32 sums; da8w4 (group > 0) also takes each group's sum of the quantized row.
void quantize_x(const Tensor& x, Prepared& p, int64_t K4, int64_t group) {
  auto& a = p.args;
  const float* xf = prescale_if_needed(x, p, x_as_f32(x, p));
  auto* q = static_cast<int8_t*>(temporary(p, x, a.M * K4));
  auto* s = static_cast<float*>(temporary(p, x, a.M * 4));
  const int64_t K = a.K, groups = group > 0 ? K / group : 0;
  auto* sums = group > 0 ? static_cast<int32_t*>(temporary(p, x, a.M * groups * 4)) : nullptr;
  const lc::KernelTable& kt = lc::active_kernels();
  parallel(a.M, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      kt.quantize_row_s8(xf + r * K, K, K4, q + r * K4, s + r);
      if (sums) lc::da8w4_group_sums(q + r * K4, K, group, sums + r * groups);
    }
  });
  a.xq = q;
  a.x_scale = s;
  a.xq_sums = sums;
}

Tensor linear_da8w8(Tensor x, Tensor packed, int64_t out_features, std::optional<Tensor> bias) {
  Prepared p = prepare(x, packed, out_features, bias, "da8w8");
  auto& a = p.args;
  if (a.M == 0) return p.out;
  quantize_x(x, p, lc::round_up4(a.K), 0);
  const lc::KernelTable& kt = lc::active_kernels();
  parallel(lc::num_panels(out_features), [&](int64_t p0, int64_t p1) { kt.linear_da8w8(kt, a, p0, p1); });
  return p.out;
}

Tensor linear_da8w4(Tensor x, Tensor packed, int64_t out_features, int64_t group_size, std::optional<Tensor> bias) {
  Prepared p = prepare(x, packed, out_features, bias, "da8w4", group_size);
  auto& a = p.args;
  if (a.M == 0) return p.out;
  a.group = group_size;
  quantize_x(x, p, a.K, group_size);  // K % 8 == 0: the rows need no padding to the 4-byte step
  const lc::KernelTable& kt = lc::active_kernels();
  parallel(lc::num_panels(out_features), [&](int64_t p0, int64_t p1) { kt.linear_da8w4(kt, a, p0, p1); });
  return p.out;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  m.impl("pack_a16w8", TORCH_BOX(&pack_a16w8));
  m.impl("pack_a16w4", TORCH_BOX(&pack_a16w4));
  m.impl("pack_da8w8", TORCH_BOX(&pack_da8w8));
  m.impl("pack_da8w4", TORCH_BOX(&pack_da8w4));
  m.impl("linear_a16w8", TORCH_BOX(&linear_a16w8));
  m.impl("linear_a16w4", TORCH_BOX(&linear_a16w4));
  m.impl("linear_da8w8", TORCH_BOX(&linear_da8w8));
  m.impl("linear_da8w4", TORCH_BOX(&linear_da8w4));
}

// Plain C entry points for Python's ctypes (no Python C-API): which kernel variant runs, and which could.
extern "C" __attribute__((visibility("default"))) const char* lowbit_cpu_isa() {
  return lc::active_kernels().name;
}

extern "C" __attribute__((visibility("default"))) const char* lowbit_cpu_isa_error() {
  return lc::isa_request_error().c_str();
}

extern "C" __attribute__((visibility("default"))) const char* lowbit_cpu_supported_isas() {
  static const std::string names = [] {
    std::string s;
    for (const auto& n : lc::supported_isas()) s += (s.empty() ? "" : ",") + n;
    return s;
  }();
  return names.c_str();
}
