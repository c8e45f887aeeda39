// Double-precision expectations of the three linear drivers and their error bound, shared by the driver
// tests and the large-index tests.
#pragma once

#include "util.h"

#include "cpu/kernels/generic/generic.h"
#include "cpu/kernels/linear.h"
#include "cpu/kernels/pack.h"

namespace lowbit_test {

namespace lc = lowbit::cpu;

// The value of output element i of y (in y_dtype) as a double.
inline double output_at(const void* y, ActDType t, int64_t i) {
  switch (t) {
    case ActDType::f32: return static_cast<const float*>(y)[i];
    case ActDType::bf16: return lc::generic::bf16_to_f32(static_cast<const uint16_t*>(y)[i]);
    case ActDType::f16: return lc::generic::f16_to_f32(static_cast<const uint16_t*>(y)[i]);
  }
  return NAN;
}

inline size_t element_size(ActDType t) { return t == ActDType::f32 ? 4 : 2; }

// Exact value `want` with fp32 error budget gamma_n * mag (mag: the sum of the magnitudes of the terms the
// kernels add, bias included): the result is off by at most that, plus one rounding to the output dtype
// (unit roundoff u of bf16 / fp16), plus half an fp16 subnormal step for results in fp16's subnormal range.
inline bool within_bound(double got, double want, double mag, int64_t n, ActDType t) {
  const double u = t == ActDType::bf16 ? std::ldexp(1.0, -8) : t == ActDType::f16 ? std::ldexp(1.0, -11) : 0.0;
  const double fp32 = gamma32(n) * mag;
  const double tol = u * (std::fabs(want) + fp32) + fp32 + (t == ActDType::f16 ? std::ldexp(1.0, -25) : 0.0);
  return std::fabs(got - want) <= tol;  // false for NaN
}

// y[i][n] of a16w8 (x . q[n]) * s[n] + b[n], its magnitude, and the fp32 roundings in it.
struct Expected {
  double value, mag;
  int64_t roundings;
};

inline Expected expect_a16w8(const float* x, int64_t K, const Int8Weights& w, const float* bias, int64_t i,
                             int64_t n) {
  Expected e{bias ? bias[n] : 0.0, bias ? std::fabs(bias[n]) : 0.0, K + 2};
  for (int64_t k = 0; k < K; ++k) {
    const double t = double(x[i * K + k]) * w.q[n * K + k] * w.scales[n];
    e.value += t;
    e.mag += std::fabs(t);
  }
  return e;
}

// a16w4 with the folded magnitude of the kernels: (q + z) * s for scale * (x . q - z * sum(x)), and
// (32 + q + z) * s for the bf16 decode kernel's scale * (16 * x . (1 + q/16) - (16 + z) * sum(x)); the larger.
// Float offsets add |offset| (offset * sum(x)) and one more rounding per group.
inline Expected expect_a16w4(const float* x, int64_t K, const Int4Weights& w, const float* bias, int64_t i,
                             int64_t n) {
  Expected e{bias ? bias[n] : 0.0, bias ? std::fabs(bias[n]) : 0.0, K + 2 * (K / w.group) + 5};
  for (int64_t k = 0; k < K; ++k) {
    const double xk = x[i * K + k];
    e.value += xk * w.value(n, k);
    e.mag += std::fabs(xk) * (w.folded(n, k) + 32 * w.scale(n, k));
  }
  return e;
}

// Packs w in its form (zero points, symmetric or float offsets) for the drivers.
inline std::vector<uint8_t> pack_int4(const Int4Weights& w) {
  const std::vector<uint8_t> canonical = w.packed();
  std::vector<uint8_t> out(static_cast<size_t>(lc::num_panels(w.N) * lc::a16w4_panel_bytes(w.K, w.group, w.has_offsets())));
  if (w.has_offsets())
    lc::pack_a16w4_offsets(canonical.data(), w.scales.data(), w.offsets.data(), w.N, w.K, w.group, out.data(), 0,
                           lc::num_panels(w.N));
  else
    lc::pack_a16w4(canonical.data(), w.scales.data(), w.zeros.empty() ? nullptr : w.zeros.data(), w.N, w.K, w.group,
                   out.data(), 0, lc::num_panels(w.N));
  return out;
}

// da8w8 from the quantized activations the driver is given: the int32 sum is exact, then
// float(acc) * x_scale * w_scale + bias is at most four fp32 roundings.
inline Expected expect_da8w8(const int8_t* xq, const float* xs, int64_t K4, const Int8Weights& w,
                             const float* bias, int64_t i, int64_t n) {
  int64_t acc = 0;
  for (int64_t k = 0; k < w.K; ++k) acc += int64_t(xq[i * K4 + k]) * w.q[n * w.K + k];
  const double prod = double(acc) * xs[i] * w.scales[n];
  return {prod + (bias ? bias[n] : 0.0), std::fabs(prod) + (bias ? std::fabs(bias[n]) : 0.0), 4};
}

// da8w4 from the quantized activations the driver is given: each group's int32 sum d is exact, so the fp32 part
// is c = sum over the G = K / g groups of s * float(d) (float(d) is exact while |d| < 2^24, i.e. always for
// g <= 8806, else one rounding; s * float(d) one more; the G - 1 additions in any order, with or without fma:
// G + 1 roundings of terms bounded by |s * d|), then y = x_scale * c (one), + bias (one): G + 4 roundings in all,
// with magnitude sum_G |s * d| * x_scale + |bias| (gamma bound, util.h).
inline Expected expect_da8w4(const int8_t* xq, const float* xs, const Int4Weights& w, const float* bias, int64_t i,
                             int64_t n) {
  const int64_t K = w.K, G = K / w.group;
  double value = 0, mag = 0;
  for (int64_t g = 0; g < G; ++g) {
    int64_t d = 0;
    for (int64_t k = g * w.group; k < (g + 1) * w.group; ++k)
      d += (int64_t(w.q[n * K + k]) - int64_t(w.zero(n, k))) * xq[i * K + k];
    const double t = double(w.scale(n, g * w.group)) * double(d) * xs[i];
    value += t;
    mag += std::fabs(t);
  }
  return {value + (bias ? bias[n] : 0.0), mag + (bias ? std::fabs(bias[n]) : 0.0), G + 4};
}

}  // namespace lowbit_test
