// Torch bindings of the SYCL kernels: argument checks, allocation, the queue, the launch geometry.
//
// The same functions serve two dispatch targets:
//   lowbit::<op>       for XPU tensors: launched on the current XPU stream's sycl::queue, not waited for
//                      (stream order, as every torch XPU op);
//   lowbit_sycl::<op>  for CPU tensors: the same kernels on the SYCL CPU device over the tensors' own memory,
//                      waited for before returning. This is how the SYCL kernels are tested on a machine with
//                      no Intel GPU; the Python wrappers route CPU tensors here when the switch in
//                      lowbit.sycl is on.
// Packed weights use the lanes-along-N layouts of kernels/pack.sycl, not the CPU panels: uint8
// [panels, rows, 64, 4] (panels of 64 columns, each rows x 64 32-bit words; see rows_*() below), so a CPU-panel
// tensor (2-D) is never mistaken for one.
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "op_checks.h"
#include "op_schemas.h"
#include "runtime.h"

namespace {

using torch::headeronly::ScalarType;
using torch::stable::Tensor;
namespace lx = lowbit::xpu;
namespace checks = lowbit::checks;
using checks::check_dtype;

constexpr int64_t kPanel = 64;      // columns per packed panel (kernels/common.h)
constexpr size_t kRowsLocal = kPanel;  // work-group of the rows (decode) path: one panel
constexpr int kTileM = 32, kTileN = 32, kRowsPerItem = 4;  // must match kernels/common.h
constexpr size_t kQuantizeLocal = 64;
constexpr size_t kPrepLocal = 64;  // work-group of the decode prepasses (1-D, bound-checked)

// ---------------------------------------------------------------- layouts (kernels/pack.sycl)
int64_t rows_int8(int64_t K) { return (K + 3) / 4 + 1; }  // a16w8 and da8w8: weight words + scales
// words + scales + zeros, or with float offsets words + scales + offsets + one marker row (pack.sycl)
int64_t rows_int4(int64_t K, int64_t g, bool offsets = false) { return (K + 7) / 8 + 2 * (K / g) + (offsets ? 1 : 0); }
// da8w4: nibble words + scales + zero points as nibbles, 8 groups a word (K a multiple of 8)
int64_t rows_da8w4(int64_t K, int64_t g) { return K / 8 + K / g + (K / g + 7) / 8; }

// ---------------------------------------------------------------- checks
void check_device(const Tensor& t, const char* name) {
  const auto type = t.device().type();
  STD_TORCH_CHECK(type == torch::headeronly::DeviceType::XPU || type == torch::headeronly::DeviceType::CPU,
                  "lowbit: ", name, " must be an XPU tensor (or a CPU tensor for lowbit_sycl:: ops)");
  STD_TORCH_CHECK(t.is_contiguous(), "lowbit: ", name, " must be contiguous");
}

void check_same_device(const Tensor& a, const Tensor& b, const char* name_a, const char* name_b) {
  STD_TORCH_CHECK(a.device() == b.device(), "lowbit: ", name_a, " and ", name_b, " must be on one device");
}

// Kernels index with int and size_t: every extent, and the element count of every tensor they touch, must fit
// an int.
void check_int_range(int64_t v, const char* what) {
  STD_TORCH_CHECK(v >= 0 && v <= INT_MAX, "lowbit: ", what, " = ", v,
                  " is too large for the SYCL kernels (they index with 32-bit ints: at most ", INT_MAX, ")");
}

const char* dtype_suffix(const Tensor& x) {
  switch (x.scalar_type()) {
    case ScalarType::Float: return "F32";
    case ScalarType::Half: return "F16";
    case ScalarType::BFloat16: return "BF16";
    default:
      STD_TORCH_CHECK(false, checks::activation_dtype_error(), torch::headeronly::toString(x.scalar_type()));
  }
  return "";
}

// ---------------------------------------------------------------- queue and launch

// XPU: the current stream of the tensor's device (its native handle is a sycl::queue*). CPU: the SYCL CPU device.
sycl::queue& queue_for(const Tensor& t) {
  if (t.is_cpu()) return lx::cpu_device_queue();
  auto stream = torch::stable::accelerator::getCurrentStream(t.get_device_index());
  return *static_cast<sycl::queue*>(stream.nativeHandle());
}

// Runs the kernels of one op. CPU tensors are ordinary host memory, so the op waits for its kernels (and
// rethrows any asynchronous error) in finish(); XPU work stays queued in stream order. If the op throws
// half-way, the destructor still waits on the CPU device, so no kernel outlives the tensors it reads.
class Launcher {
 public:
  explicit Launcher(const Tensor& t) : cpu_(t.is_cpu()), q_(queue_for(t)) {}
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;
  ~Launcher() {
    if (!cpu_) return;
    try {
      q_.wait();
    } catch (...) {  // already unwinding from the error that matters; never throw from a destructor
    }
  }

  // 1-D: `global` work-items rounded up to a multiple of `local` (the kernels bound-check).
  template <class... Args>
  void operator()(const char* source, const std::string& kernel, size_t global, size_t local, const Args&... args) {
    const size_t rounded = (global + local - 1) / local * local;
    if (rounded > 0) (*this)(source, kernel, sycl::nd_range<1>(rounded, local), args...);
  }

  template <int Dims, class... Args>
  void operator()(const char* source, const std::string& kernel, const sycl::nd_range<Dims>& range,
                  const Args&... args) {
    lx::launch(q_, lx::get_kernel(q_, source, kernel.c_str()), range, args...);
  }

  void finish() {
    if (cpu_) q_.wait_and_throw();
  }

 private:
  bool cpu_;
  sycl::queue& q_;
};

// From how many rows the tiled (local-memory) path replaces the rows (decode) path. On a GPU the tiles reuse
// weights and activations from local memory (from 16 rows: a half-empty 32-row tile still halves weight
// traffic); on the CPU device the rows path measured 1.6-3x faster at M = 128 (benchmarks/bench_sycl.py: caches
// already give the reuse, and the rows path has no barriers), so it keeps the rows path for every M.
// LOWBIT_SYCL_TILED_MIN_M overrides both (0: always tiled; a huge value: never), read on every call so tests
// cover both paths.
int64_t tiled_min_m(const sycl::queue& q) {
  const char* v = std::getenv("LOWBIT_SYCL_TILED_MIN_M");
  if (v && *v) return std::strtoll(v, nullptr, 10);
  return q.get_device().is_cpu() ? std::numeric_limits<int64_t>::max() : 16;
}

// Columns per work-item of the decode kernels at M = 1: 8 on the CPU device (the "cols8" kernels: one vector of
// lanes reads whole panel rows in order, measured 1.5x faster single-threaded than one column per work-item,
// kernels/common.h), 1 on a GPU (N work-items, for occupancy). LOWBIT_SYCL_DECODE_COLS (1 or 8) overrides it, read on
// every call so tests cover both kernels.
int64_t decode_cols(const sycl::queue& q) {
  const char* v = std::getenv("LOWBIT_SYCL_DECODE_COLS");
  if (v && *v) return std::strtoll(v, nullptr, 10) == 8 ? 8 : 1;
  return q.get_device().is_cpu() ? 8 : 1;
}
constexpr size_t kDecodeCols = 8;  // must match kernels/common.h

// ---------------------------------------------------------------- packing

int64_t num_panels(int64_t N) { return (N + kPanel - 1) / kPanel; }

Tensor new_packed(const Tensor& like, int64_t rows, int64_t N) {
  check_int_range(num_panels(N) * rows * kPanel, "packed words");
  return torch::stable::new_empty(like, {num_panels(N), rows, kPanel, 4}, ScalarType::Byte);
}

void check_int8_weight(const Tensor& weight, const Tensor& scales, const char* mode) {
  check_device(weight, "weight");
  check_device(scales, "scales");
  check_same_device(weight, scales, "weight", "scales");
  checks::check_int8_weight(weight, scales, checks::mode(mode));
}

Tensor pack_int8(const Tensor& weight, const Tensor& scales) {
  const int64_t N = weight.size(0), K = weight.size(1);
  Tensor out = new_packed(weight, rows_int8(K), N);
  Launcher run(weight);
  run("pack.sycl", "pack_int8", size_t(out.numel() / 4), kRowsLocal, weight.const_data_ptr<int8_t>(),
      scales.const_data_ptr<float>(), static_cast<uint32_t*>(out.mutable_data_ptr()), int(N), int(K));
  run.finish();
  return out;
}

Tensor pack_a16w8(Tensor weight, Tensor scales) {
  check_int8_weight(weight, scales, "a16w8");
  return pack_int8(weight, scales);
}

Tensor pack_da8w8(Tensor weight, Tensor scales) {
  check_int8_weight(weight, scales, "da8w8");
  return pack_int8(weight, scales);
}

// The largest zero point, read back to the host (one small reduction; packing happens once per weight).
// Whether a float32 tensor holds only finite values: x - x is 0 for those and NaN for Inf and NaN, so its sum is 0
// exactly when they all are (one reduction on the tensor's device).
bool all_finite(const Tensor& t) {
  Tensor d = torch::stable::subtract(t, t);
  Tensor s = torch::stable::sum(d, std::vector<int64_t>{0, 1});
  if (!s.is_cpu()) s = torch::stable::to(s, torch::stable::Device(torch::headeronly::DeviceType::CPU));
  return *s.const_data_ptr<float>() == 0.0f;
}

int64_t max_zero(const Tensor& zeros) {
  Tensor m = torch::stable::amax(zeros, std::vector<int64_t>{0, 1});
  if (!m.is_cpu()) m = torch::stable::to(m, torch::stable::Device(torch::headeronly::DeviceType::CPU));
  return *m.const_data_ptr<uint8_t>();
}

// Device checks of an int4 weight's tensors (a16w4, da8w4).
void check_int4_devices(const Tensor& weight, const Tensor& scales, const std::optional<Tensor>& zeros) {
  check_device(weight, "weight");
  check_device(scales, "scales");
  check_same_device(weight, scales, "weight", "scales");
  if (zeros) {
    check_device(*zeros, "zeros");
    check_same_device(weight, *zeros, "weight", "zeros");
  }
}

// The zero points' data after checking their range (nullptr when symmetric).
const uint8_t* checked_zeros(const std::optional<Tensor>& zeros) {
  if (!zeros) return nullptr;
  const int64_t zmax = max_zero(*zeros);
  STD_TORCH_CHECK(zmax <= 15, "lowbit: zeros must be in 0..15, found ", zmax);
  return zeros->const_data_ptr<uint8_t>();
}

Tensor pack_a16w4(Tensor weight, Tensor scales, std::optional<Tensor> zeros, int64_t group_size) {
  check_int4_devices(weight, scales, zeros);
  const auto [N, K, groups] = checks::check_int4_weight(weight, scales, zeros, group_size, checks::mode("a16w4"));
  const uint8_t* z = nullptr;
  const float* offsets = nullptr;  // float32 `zeros` are offsets: w = scale * q + offset
  if (zeros && zeros->scalar_type() == ScalarType::Float) {
    STD_TORCH_CHECK(all_finite(*zeros), "lowbit: zeros (float32 offsets) must be finite");
    offsets = zeros->const_data_ptr<float>();
  } else if (zeros) {
    const int64_t zmax = max_zero(*zeros);
    STD_TORCH_CHECK(zmax <= 15, "lowbit: zeros must be in 0..15, found ", zmax);
    z = zeros->const_data_ptr<uint8_t>();
  }
  const int64_t rows = rows_int4(K, group_size, offsets != nullptr);
  Tensor out = new_packed(weight, rows, N);
  Launcher run(weight);
  run("pack.sycl", "pack_int4", size_t(out.numel() / 4), kRowsLocal, weight.const_data_ptr<uint8_t>(),
      scales.const_data_ptr<float>(), z, offsets, static_cast<uint32_t*>(out.mutable_data_ptr()), int(N), int(K),
      int(group_size));
  run.finish();
  return out;
}

Tensor pack_da8w4(Tensor weight, Tensor scales, std::optional<Tensor> zeros, int64_t group_size) {
  check_int4_devices(weight, scales, zeros);
  const auto [N, K, groups] = checks::check_int4_weight(weight, scales, zeros, group_size, checks::mode("da8w4"));
  const uint8_t* z = checked_zeros(zeros);
  Tensor out = new_packed(weight, rows_da8w4(K, group_size), N);
  Launcher run(weight);
  run("pack.sycl", "pack_da8w4", size_t(out.numel() / 4), kRowsLocal, weight.const_data_ptr<uint8_t>(),
      scales.const_data_ptr<float>(), z, static_cast<uint32_t*>(out.mutable_data_ptr()), int(N), int(K),
      int(group_size));
  run.finish();
  return out;
}

// ---------------------------------------------------------------- linear

struct Prepared {
  int64_t M, N, K;
  Tensor out;
  std::optional<Tensor> bias32;  // fp32 copy of the bias, alive until the kernels are enqueued
  const float* bias = nullptr;
};

// Rows per panel of a packing (mode, K, group size, a16w4's float-offset form).
int64_t packed_rows(const char* mode, int64_t K, int64_t group_size, bool offsets) {
  const std::string m = mode;
  if (m == "a16w4") return rows_int4(K, group_size, offsets);
  if (m == "da8w4") return rows_da8w4(K, group_size);
  return rows_int8(K);
}

// Every check of a linear op's arguments (op_checks.h, in the order _opmeta.check_linear mirrors, plus the 32-bit
// index limits of the kernels), and the output.
Prepared prepare(const Tensor& x, const Tensor& packed, int64_t N, const std::optional<Tensor>& bias,
                 const char* mode_name, int64_t group_size = 0, bool offsets = false) {
  const checks::Mode& mode = checks::mode(mode_name);
  const int64_t K_arg = x.dim() >= 1 ? x.size(x.dim() - 1) : 0;
  checks::check_linear_k(mode, K_arg, group_size);  // the mode's bounds, whoever packed the weight
  check_device(x, "x");
  check_device(packed, "packed_weight");
  check_same_device(x, packed, "x", "packed_weight");
  dtype_suffix(x);
  const int64_t K = checks::check_linear_args(x, packed, N);
  check_int_range(N, "out_features");
  checks::check_k_positive(K);
  check_int_range(K, "K");
  check_int_range(x.numel(), "x.numel()");
  STD_TORCH_CHECK(packed.dim() == 4 && packed.size(2) == kPanel && packed.size(3) == 4,
                  "lowbit: packed_weight is not in the SYCL layout [panels, rows, 64, 4] (a CPU-panel packing? "
                  "pack the weight on the device it runs on)");
  STD_TORCH_CHECK(packed.size(0) == num_panels(N), "lowbit: packed_weight has ", packed.size(0),
                  " panels of 64 columns, out_features = ", N, " needs ", num_panels(N));
  if (packed.size(1) != packed_rows(mode_name, K, group_size, offsets))
    checks::packed_size_mismatch(packed.size(1), mode, K, group_size, packed_rows);
  check_int_range(packed.numel() / 4, "packed_weight's words");
  Prepared p{0, N, K, Tensor(), std::nullopt, nullptr};
  if (bias) {
    check_device(*bias, "bias");
    check_same_device(x, *bias, "x", "bias");
    checks::check_bias(x, *bias, N);
    p.bias32 = torch::stable::to(*bias, ScalarType::Float);
    p.bias = p.bias32->const_data_ptr<float>();
  }
  p.M = x.numel() / K;
  check_int_range(p.M * N, "the output's numel (rows of x * out_features)");
  check_int_range(p.M * ((K + 3) / 4 * 4), "x.numel() with K rounded up to 4");  // da8w8's quantized activations
  p.out = checks::new_output(x, N);
  return p;
}

// Launch geometry shared by every mode: dimension 1 = columns, dimension 0 = rows (kernels/common.h).
struct Geometry {
  std::string kernel;  // e.g. "a16w4_rows4_BF16"
  sycl::nd_range<2> range;
  bool tiled;          // false: the rows (decode) path, whose kernels read the activations from a prepass
};

Geometry geometry(const char* mode, const Tensor& x, int64_t M, int64_t N) {
  const std::string dt = dtype_suffix(x);
  if (M >= tiled_min_m(queue_for(x))) {
    const size_t tiles_n = (N + kTileN - 1) / kTileN, tiles_m = (M + kTileM - 1) / kTileM;
    constexpr size_t row_items = kTileM / kRowsPerItem;
    return {std::string(mode) + "_tiled_" + dt,
            sycl::nd_range<2>({tiles_m * row_items, tiles_n * kTileN}, {row_items, size_t(kTileN)}), true};
  }
  // M = 1 (decode) gets its own kernel; any other M takes 4 rows per work-item, reading each weight once per 4.
  const size_t ncols = (N + kRowsLocal - 1) / kRowsLocal * kRowsLocal;
  if (M == 1 && decode_cols(queue_for(x)) == 8) {  // work-groups of 8 work-items, one panel each
    constexpr size_t lanes = kRowsLocal / kDecodeCols;
    return {std::string(mode) + "_cols8_" + dt, sycl::nd_range<2>({1, ncols / kDecodeCols}, {1, lanes}), false};
  }
  const int mb = M == 1 ? 1 : 4;
  return {std::string(mode) + "_rows" + std::to_string(mb) + "_" + dt,
          sycl::nd_range<2>({size_t((M + mb - 1) / mb), ncols}, {1, kRowsLocal}), false};
}

Tensor linear_a16w8(Tensor x, Tensor packed, int64_t out_features, std::optional<Tensor> bias) {
  Prepared p = prepare(x, packed, out_features, bias, "a16w8");
  const int64_t K = p.K;
  if (p.M == 0) return p.out;
  const Geometry g = geometry("a16w8", x, p.M, p.N);
  Tensor xs;  // the rows path's prepass output (fp32 activations), alive until the kernels finish or are enqueued
  Launcher run(x);
  const void* xk = x.const_data_ptr();
  if (!g.tiled) {
    xs = torch::stable::new_empty(x, {p.M, K}, ScalarType::Float);
    run("a16w8.sycl", std::string("a16w8_prep_") + dtype_suffix(x), size_t(p.M * K), kPrepLocal, xk,
        xs.mutable_data_ptr<float>(), int(p.M * K));
    xk = xs.const_data_ptr();
  }
  run("a16w8.sycl", g.kernel, g.range, xk, static_cast<const uint32_t*>(packed.const_data_ptr()), p.bias,
      p.out.mutable_data_ptr(), int(p.M), int(p.N), int(K));
  run.finish();
  return p.out;
}

Tensor linear_a16w4(Tensor x, Tensor packed, int64_t out_features, int64_t group_size, std::optional<Tensor> bias) {
  const int64_t K = x.dim() >= 1 ? x.size(x.dim() - 1) : 0;
  // the packing's form by its row count (pack.sycl: the two forms never have the same count, for any group size)
  const bool group_ok = K > 0 && K % 2 == 0 && group_size > 0 && group_size % 2 == 0 && K % group_size == 0;
  const bool offsets = group_ok && packed.dim() == 4 && packed.size(1) == rows_int4(K, group_size, true);
  Prepared p = prepare(x, packed, out_features, bias, "a16w4", group_size, offsets);
  if (p.M == 0) return p.out;
  const Geometry g = geometry("a16w4", x, p.M, p.N);
  Tensor xs, xsum;  // the prepass's outputs: alive until the kernels finish (CPU) or are enqueued (XPU)
  Launcher run(x);
  if (g.tiled) {
    run("a16w4.sycl", g.kernel, g.range, x.const_data_ptr(),
        static_cast<const uint32_t*>(packed.const_data_ptr()), p.bias, p.out.mutable_data_ptr(), int(p.M),
        int(p.N), int(K), int(group_size), int(offsets));
  } else {  // prepass: prescaled fp32 activations and their group sums (kernels/a16w4.sycl)
    const int64_t groups = K / group_size;
    xs = torch::stable::new_empty(x, {p.M, K}, ScalarType::Float);
    xsum = torch::stable::new_empty(x, {p.M, groups}, ScalarType::Float);
    run("a16w4.sycl", std::string("a16w4_prep_") + dtype_suffix(x), size_t(p.M * groups), kPrepLocal,
        x.const_data_ptr(), xs.mutable_data_ptr<float>(), xsum.mutable_data_ptr<float>(), int(p.M), int(K),
        int(group_size));
    run("a16w4.sycl", g.kernel, g.range, xs.const_data_ptr<float>(), xsum.const_data_ptr<float>(),
        static_cast<const uint32_t*>(packed.const_data_ptr()), p.bias, p.out.mutable_data_ptr(), int(p.M),
        int(p.N), int(K), int(group_size), int(offsets));
  }
  run.finish();
  return p.out;
}

Tensor linear_da8w8(Tensor x, Tensor packed, int64_t out_features, std::optional<Tensor> bias) {
  Prepared p = prepare(x, packed, out_features, bias, "da8w8");
  const int64_t K = p.K;
  if (p.M == 0) return p.out;
  const int64_t K4 = (K + 3) / 4 * 4;
  Tensor xq = torch::stable::new_empty(x, {p.M, K4}, ScalarType::Char);
  Tensor xs = torch::stable::new_empty(x, {p.M}, ScalarType::Float);
  const std::string dt = dtype_suffix(x);
  const Geometry g = geometry("da8w8", x, p.M, p.N);
  // the rows path reads the quantized activations as fp32 (exact small integers, one broadcast load per element)
  std::optional<Tensor> xf;
  if (!g.tiled) xf = torch::stable::new_empty(x, {p.M, K4}, ScalarType::Float);
  float* xfp = xf ? xf->mutable_data_ptr<float>() : nullptr;
  Launcher run(x);
  run("da8w8.sycl", "da8w8_quantize_" + dt, size_t(p.M) * kQuantizeLocal, kQuantizeLocal, x.const_data_ptr(),
      xq.mutable_data_ptr<int8_t>(), xfp, xs.mutable_data_ptr<float>(), int(K), int(K4));
  const void* xk = xf ? static_cast<const void*>(xfp) : static_cast<const void*>(xq.const_data_ptr<int8_t>());
  run("da8w8.sycl", g.kernel, g.range, xk, xs.const_data_ptr<float>(),
      static_cast<const uint32_t*>(packed.const_data_ptr()), p.bias, p.out.mutable_data_ptr(), int(p.M), int(p.N),
      int(K4));
  run.finish();
  return p.out;
}

Tensor linear_da8w4(Tensor x, Tensor packed, int64_t out_features, int64_t group_size, std::optional<Tensor> bias) {
  Prepared p = prepare(x, packed, out_features, bias, "da8w4", group_size);
  const int64_t K = p.K;
  if (p.M == 0) return p.out;
  const int64_t groups = K / group_size;
  const std::string dt = dtype_suffix(x);
  const Geometry g = geometry("da8w4", x, p.M, p.N);
  // quantized activations: int8 (the tiled path's operand; the rows path sums its groups from it), and for the
  // rows path the same values as prescaled fp32 plus each group's sum (kernels/da8w4.sycl); alive until the
  // kernels finish (CPU) or are enqueued (XPU)
  Tensor xq = torch::stable::new_empty(x, {p.M, K}, ScalarType::Char);
  Tensor xs = torch::stable::new_empty(x, {p.M}, ScalarType::Float);
  std::optional<Tensor> xf, xsum;
  if (!g.tiled) {  // (M * K fits an int: prepare checked x.numel())
    xf = torch::stable::new_empty(x, {p.M, K}, ScalarType::Float);
    xsum = torch::stable::new_empty(x, {p.M, groups}, ScalarType::Int);
  }
  float* xfp = xf ? xf->mutable_data_ptr<float>() : nullptr;
  int32_t* xsump = xsum ? xsum->mutable_data_ptr<int32_t>() : nullptr;
  Launcher run(x);
  run("da8w4.sycl", "da8w4_quantize_" + dt, size_t(p.M) * kQuantizeLocal, kQuantizeLocal, x.const_data_ptr(),
      xq.mutable_data_ptr<int8_t>(), xfp, xsump, xs.mutable_data_ptr<float>(), int(K), int(group_size));
  const auto* w = static_cast<const uint32_t*>(packed.const_data_ptr());
  if (g.tiled) {
    run("da8w4.sycl", g.kernel, g.range, xq.const_data_ptr<int8_t>(), xs.const_data_ptr<float>(), w, p.bias,
        p.out.mutable_data_ptr(), int(p.M), int(p.N), int(K), int(group_size));
  } else {
    run("da8w4.sycl", g.kernel, g.range, static_cast<const float*>(xfp), static_cast<const int32_t*>(xsump),
        xs.const_data_ptr<float>(), w, p.bias, p.out.mutable_data_ptr(), int(p.M), int(p.N), int(K),
        int(group_size));
  }
  run.finish();
  return p.out;
}

void register_kernels(torch::stable::detail::StableLibrary& m) {
  m.impl("pack_a16w8", TORCH_BOX(&pack_a16w8));
  m.impl("pack_a16w4", TORCH_BOX(&pack_a16w4));
  m.impl("pack_da8w8", TORCH_BOX(&pack_da8w8));
  m.impl("pack_da8w4", TORCH_BOX(&pack_da8w4));
  m.impl("linear_a16w8", TORCH_BOX(&linear_a16w8));
  m.impl("linear_a16w4", TORCH_BOX(&linear_a16w4));
  m.impl("linear_da8w8", TORCH_BOX(&linear_da8w8));
  m.impl("linear_da8w4", TORCH_BOX(&linear_da8w4));
}

}  // namespace

// The same schemas as lowbit:: (csrc/op_schemas.h), in a namespace of their own so that CPU tensors can reach
// the SYCL kernels without displacing the native CPU kernels registered for lowbit::.
STABLE_TORCH_LIBRARY(lowbit_sycl, m) { lowbit::define_op_schemas(m); }

STABLE_TORCH_LIBRARY_IMPL(lowbit_sycl, CPU, m) { register_kernels(m); }

STABLE_TORCH_LIBRARY_IMPL(lowbit, XPU, m) { register_kernels(m); }
