// Shared by the kernel tests: every kernel variant this CPU runs, seeded random data, canonical weights and
// the fp32 error bound the kernels are held to.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "cpu/kernels/api.h"
#include "cpu/kernels/isa.h"

namespace lowbit_test {

using lowbit::cpu::ActDType;
using lowbit::cpu::KernelTable;
using lowbit::cpu::kPanel;

// Every variant this CPU can execute (emulated ones included), taken straight from the library's registry
// (not via LOWBIT_CPU_ISA), so a new variant is tested without editing the tests.
inline std::vector<const KernelTable*> runnable_variants() {
  std::vector<const KernelTable*> out;
  for (const std::string& name : lowbit::cpu::supported_isas()) {
    const KernelTable* t = lowbit::cpu::find_kernels(name);
    CHECK(t != nullptr, "variant ", name, " is listed but has no table");
    if (t) out.push_back(t);
  }
  static bool printed = false;
  if (!printed) {
    printed = true;
    std::printf("variants tested:");
    for (auto* t : out) std::printf(" %s", t->name);
    std::printf("\n");
  }
  return out;
}

inline std::mt19937_64& rng() {
  static std::mt19937_64 g(20240607);
  return g;
}

inline float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng()); }
inline int64_t randint(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

inline std::vector<float> random_floats(int64_t n, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = uniform(lo, hi);
  return v;
}

// Random values exactly representable in bf16 (and so in fp32 too), and their bf16 bits: the bf16 kernels read
// the bf16 activations, the others their fp32 widening, and both must mean the same numbers.
inline std::vector<float> random_bf16_floats(int64_t n, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v = random_floats(n, lo, hi);
  for (auto& x : v) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    u &= 0xffff0000u;
    std::memcpy(&x, &u, 4);
  }
  return v;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    out[i] = uint16_t(u >> 16);
  }
  return out;
}

// Canonical weights (lowbit.formats): int8 [N, K] + scales [N]; int4 q [N, K] in 0..15 (unpacked here, packed
// by pack_int4) + scales and zeros [N, K/g].
struct Int8Weights {
  int64_t N, K;
  std::vector<int8_t> q;
  std::vector<float> scales;
};
inline Int8Weights random_int8(int64_t N, int64_t K) {
  Int8Weights w{N, K, std::vector<int8_t>(size_t(N * K)), random_floats(N, 0.001f, 0.02f)};
  for (auto& v : w.q) v = int8_t(randint(-128, 127));  // -128 too: the ops accept any int8
  return w;
}

// The three forms of int4 weights: uint8 zero points, symmetric (zero point 8), float offsets.
enum class Int4Form { zeros, symmetric, offsets };
constexpr Int4Form kInt4Forms[] = {Int4Form::zeros, Int4Form::symmetric, Int4Form::offsets};

struct Int4Weights {
  int64_t N, K, group;
  std::vector<uint8_t> q;  // [N][K] in 0..15
  std::vector<float> scales;
  std::vector<uint8_t> zeros;  // empty: symmetric (zero point 8) or float offsets
  std::vector<float> offsets;  // non-empty: w = scale * q + offset (and zeros is empty)
  std::vector<uint8_t> packed() const {  // canonical uint8 [N, K/2], element k in the low nibble when k is even
    std::vector<uint8_t> out(static_cast<size_t>(N * K / 2));
    for (int64_t i = 0; i < N * K / 2; ++i) out[i] = uint8_t(q[2 * i] | q[2 * i + 1] << 4);
    return out;
  }
  bool has_offsets() const { return !offsets.empty(); }
  float zero(int64_t n, int64_t k) const {
    if (has_offsets()) return 0.f;
    return zeros.empty() ? 8.f : float(zeros[n * (K / group) + k / group]);
  }
  float offset(int64_t n, int64_t k) const { return has_offsets() ? offsets[n * (K / group) + k / group] : 0.f; }
  float scale(int64_t n, int64_t k) const { return scales[n * (K / group) + k / group]; }
  // the exact weight, and the magnitude of the terms the kernels fold it into: s * q and s * z (or the offset)
  double value(int64_t n, int64_t k) const {
    return double(scale(n, k)) * (double(q[n * K + k]) - zero(n, k)) + offset(n, k);
  }
  double folded(int64_t n, int64_t k) const {
    return std::fabs(double(scale(n, k))) * (q[n * K + k] + zero(n, k)) + std::fabs(double(offset(n, k)));
  }
};
inline Int4Weights random_int4(int64_t N, int64_t K, int64_t group, Int4Form form) {
  Int4Weights w{N, K, group, std::vector<uint8_t>(size_t(N * K)), random_floats(N * (K / group), 0.01f, 0.1f), {}, {}};
  for (auto& v : w.q) v = uint8_t(randint(0, 15));
  if (form == Int4Form::zeros) {
    w.zeros.resize(size_t(N * (K / group)));
    for (auto& v : w.zeros) v = uint8_t(randint(0, 15));
  } else if (form == Int4Form::offsets) {
    w.offsets = random_floats(N * (K / group), -0.8f, 0.8f);  // about -8 scales, as a Q4_1 minimum is
  }
  return w;
}
inline Int4Weights random_int4(int64_t N, int64_t K, int64_t group, bool symmetric) {
  return random_int4(N, K, group, symmetric ? Int4Form::symmetric : Int4Form::zeros);
}

// gamma_n = n u / (1 - n u) with u = 2^-24 (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1): a
// sum or dot product of n fp32 terms, evaluated in any order, with or without fma, is off from the exact value
// by at most gamma_n times the sum of the terms' magnitudes. A worst-case bound, so no test data can exceed it,
// and still far below one dropped or doubled term for the sizes used here.
inline double gamma32(int64_t n) {
  const double u = std::ldexp(1.0, -24);
  return double(n) * u / (1.0 - double(n) * u);
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// A buffer with a guard zone past its end: a kernel writing beyond n elements shows as a changed canary even
// without AddressSanitizer.
template <typename T>
struct Guarded {
  static constexpr int64_t kGuard = 64;
  int64_t size;
  T canary;
  std::vector<T> data;
  Guarded(int64_t n, T fill, T canary_value)
      : size(n), canary(canary_value), data(static_cast<size_t>(n + kGuard), canary_value) {
    std::fill(data.begin(), data.begin() + n, fill);
  }
  T* get() { return data.data(); }
  bool guard_intact() const {
    for (int64_t i = size; i < size + kGuard; ++i)
      if (std::memcmp(&data[size_t(i)], &canary, sizeof(T)) != 0) return false;
    return true;
  }
};

}  // namespace lowbit_test
