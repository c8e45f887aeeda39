// The three linear drivers (cpu/kernels/linear.h) with every variant's table: decode (M <= 4) and tiled
// paths, row blocks of 64 and their tails, K-chunks of 256 and their tails, groups spanning chunks, N not a
// multiple of 16, every output dtype, with and without bias, and split panel ranges as threads split them.
// Outputs start as NaN, so an element the drivers forget to write fails.
#define LOWBIT_TEST_MAIN
#include "linear_reference.h"

#include "cpu/kernels/da8w4.h"

using namespace lowbit_test;

namespace {

// 5-7: one fused tile; 8, 12: two balanced tiles (4 + 4, 6 + 6); 13, 16: three tiles; 64+: row blocks of the
// default drivers; 260: row blocks of the bf16 drivers (256)
const int64_t kMs[] = {1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 16, 64, 65, 70, 260};
const int64_t kNs[] = {1, 17, 40};
const ActDType kDTypes[] = {ActDType::f32, ActDType::bf16, ActDType::f16};

// The exact results of one (x, weights) pair without bias, computed once for every dtype and bias variant.
template <typename Expect>
std::vector<Expected> expectations(int64_t M, int64_t N, Expect expect) {
  std::vector<Expected> out;
  out.reserve(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t n = 0; n < N; ++n) out.push_back(expect(i, n));
  return out;
}

// Runs the driver over all panels in two ranges (as two threads would) into a NaN-filled y, then checks
// every element against the expectation (plus bias) and that nothing past M x N was written.
template <typename Driver>
void run_and_check(const KernelTable& kt, lc::LinearArgs a, Driver driver, const std::vector<Expected>& want,
                   const char* what) {
  const int64_t total = a.M * a.N * int64_t(element_size(a.y_dtype));
  Guarded<uint8_t> y(total, 0xff, 0x5a);  // 0xff.. is NaN in every output dtype
  a.y = y.get();
  const int64_t P = lc::num_panels(a.N), half = P / 2;
  driver(kt, a, 0, half);
  driver(kt, a, half, P);
  long bad = 0;
  for (int64_t i = 0; i < a.M; ++i)
    for (int64_t n = 0; n < a.N; ++n) {
      const Expected& e = want[size_t(i * a.N + n)];
      const double b = a.bias ? a.bias[n] : 0.0;
      const double got = output_at(y.get(), a.y_dtype, i * a.N + n);
      if (!within_bound(got, e.value + b, e.mag + std::fabs(b), e.roundings, a.y_dtype) && ++bad <= 3)
        CHECK(false, kt.name, " ", what, " M=", a.M, " N=", a.N, " K=", a.K, " dtype=", int(a.y_dtype),
              " bias=", a.bias != nullptr, " y[", i, "][", n, "] = ", got, ", expected ", e.value + b);
    }
  CHECK(y.guard_intact(), kt.name, " ", what, " wrote past M x N");
}

}  // namespace

TEST(linear_a16w8_all_paths) {
  for (const KernelTable* kt : runnable_variants())
    for (int64_t K : {1, 7, 300, 520})  // 520 = two 256-chunks and a tail of 8
      for (int64_t N : kNs) {
        const Int8Weights w = random_int8(N, K);
        std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::a16w8_panel_bytes(K)));
        lc::pack_a16w8(w.q.data(), w.scales.data(), N, K, packed.data(), 0, lc::num_panels(N));
        const std::vector<float> bias = random_floats(N);
        for (int64_t M : kMs) {
          const std::vector<float> x = random_bf16_floats(M * K);  // bf16 values: the bf16 path reads xb
          const std::vector<uint16_t> xb = to_bf16(x);
          const auto want = expectations(M, N, [&](int64_t i, int64_t n) {
            return expect_a16w8(x.data(), K, w, nullptr, i, n);
          });
          for (ActDType t : kDTypes)
            for (bool with_bias : {false, true}) {
              lc::LinearArgs a;
              a.M = M, a.K = K, a.N = N, a.x = x.data(), a.packed = packed.data(), a.y_dtype = t;
              a.x_bf16 = t == ActDType::bf16 ? xb.data() : nullptr;
              a.bias = with_bias ? bias.data() : nullptr;
              run_and_check(*kt, a, kt->linear_a16w8, want, "a16w8");
            }
        }
      }
}

TEST(linear_a16w4_all_paths) {
  for (const KernelTable* kt : runnable_variants())
    // groups smaller than, equal to and larger than the 256 K-chunk, a chunk ending mid-group (600 / 600)
    for (auto [K, group] : {std::pair<int64_t, int64_t>{2, 2}, {40, 8}, {520, 8}, {512, 128}, {600, 600}})
      for (Int4Form form : kInt4Forms)
        for (int64_t N : kNs) {
          const Int4Weights w = random_int4(N, K, group, form);
          const std::vector<uint8_t> packed = pack_int4(w);
          const std::vector<float> bias = random_floats(N);
          for (int64_t M : kMs) {
            const std::vector<float> x = random_bf16_floats(M * K);
            const std::vector<uint16_t> xb = to_bf16(x);
            const auto want = expectations(M, N, [&](int64_t i, int64_t n) {
              return expect_a16w4(x.data(), K, w, nullptr, i, n);
            });
            for (ActDType t : kDTypes) {
              lc::LinearArgs a;
              a.M = M, a.K = K, a.N = N, a.x = x.data(), a.packed = packed.data(), a.y_dtype = t, a.group = group;
              a.offsets = w.has_offsets();
              a.x_bf16 = t == ActDType::bf16 ? xb.data() : nullptr;
              a.bias = M % 2 ? bias.data() : nullptr;
              run_and_check(*kt, a, kt->linear_a16w4, want, "a16w4");
            }
          }
        }
}

TEST(linear_da8w8_all_paths) {
  for (const KernelTable* kt : runnable_variants())
    for (int64_t K : {1, 5, 203})  // K not a multiple of the 4-byte dot-product step
      for (int64_t N : kNs) {
        const Int8Weights w = random_int8(N, K);
        const int64_t K4 = lc::round_up4(K);
        std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::da8w8_panel_bytes(K)));
        lc::pack_da8w8(w.q.data(), w.scales.data(), N, K, packed.data(), 0, lc::num_panels(N));
        const std::vector<float> bias = random_floats(N);
        for (int64_t M : kMs) {
          const std::vector<float> x = random_floats(M * K, -5.f, 5.f);
          std::vector<int8_t> xq(static_cast<size_t>(M * K4));
          std::vector<float> xs(static_cast<size_t>(M));
          for (int64_t i = 0; i < M; ++i) kt->quantize_row_s8(x.data() + i * K, K, K4, xq.data() + i * K4, &xs[i]);
          const auto want = expectations(M, N, [&](int64_t i, int64_t n) {
            return expect_da8w8(xq.data(), xs.data(), K4, w, nullptr, i, n);
          });
          for (ActDType t : kDTypes) {
            lc::LinearArgs a;
            a.M = M, a.K = K, a.N = N, a.xq = xq.data(), a.x_scale = xs.data(), a.packed = packed.data();
            a.y_dtype = t, a.bias = M % 2 ? bias.data() : nullptr;
            run_and_check(*kt, a, kt->linear_da8w8, want, "da8w8");
          }
        }
      }
}

// Decode over long panels (>= 64 KiB, K = 8192 at g = 128), which the bf16 a16w4 kernel reads two at a time:
// a pair of panels and a single one (N = 40 = 3 panels), every decode row count.
TEST(linear_a16w4_decode_long_panels) {
  const int64_t K = 8192, group = 128, N = 40;
  CHECK(lc::a16w4_panel_bytes(K, group) >= (int64_t(64) << 10), "the panels must be long");
  for (Int4Form form : {Int4Form::zeros, Int4Form::offsets}) {
    const Int4Weights w = random_int4(N, K, group, form);
    const std::vector<uint8_t> packed = pack_int4(w);
    for (const KernelTable* kt : runnable_variants())
      for (int64_t M = 1; M <= lc::kGemvRows; ++M) {
      const std::vector<float> x = random_bf16_floats(M * K);
      const std::vector<uint16_t> xb = to_bf16(x);
      const auto want = expectations(M, N, [&](int64_t i, int64_t n) { return expect_a16w4(x.data(), K, w, nullptr, i, n); });
      lc::LinearArgs a;
      a.M = M, a.K = K, a.N = N, a.x = x.data(), a.x_bf16 = xb.data(), a.packed = packed.data();
      a.y_dtype = ActDType::bf16, a.group = group, a.offsets = w.has_offsets();
      run_and_check(*kt, a, kt->linear_a16w4, want, "a16w4 long panels");
    }
  }
}

namespace {

// Quantizes x (M x K) with the variant's quantize_row_s8 and takes the group sums, as the op does.
struct QuantizedRows {
  std::vector<int8_t> xq;
  std::vector<float> xs;
  std::vector<int32_t> sums;
};
QuantizedRows quantize_rows(const KernelTable& kt, const std::vector<float>& x, int64_t M, int64_t K, int64_t group) {
  QuantizedRows q{std::vector<int8_t>(size_t(M * K)), std::vector<float>(size_t(M)),
                  std::vector<int32_t>(size_t(M * (K / group)))};
  for (int64_t i = 0; i < M; ++i) {
    kt.quantize_row_s8(x.data() + i * K, K, K, q.xq.data() + i * K, &q.xs[i]);
    lc::da8w4_group_sums(q.xq.data() + i * K, K, group, q.sums.data() + i * (K / group));
  }
  return q;
}

// Symmetric when w has no zero points.
void run_da8w4(const KernelTable& kt, const Int4Weights& w, const std::vector<float>& x,
               int64_t M, const std::vector<float>& bias, const char* what) {
  const int64_t N = w.N, K = w.K, group = w.group;
  const std::vector<uint8_t> canonical = w.packed();
  std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::da8w4_panel_bytes(K, group)));
  lc::pack_da8w4(canonical.data(), w.scales.data(), w.zeros.empty() ? nullptr : w.zeros.data(), N, K, group, packed.data(),
                 0, lc::num_panels(N));
  const QuantizedRows q = quantize_rows(kt, x, M, K, group);
  const auto want = expectations(M, N, [&](int64_t i, int64_t n) {
    return expect_da8w4(q.xq.data(), q.xs.data(), w, nullptr, i, n);
  });
  for (ActDType t : kDTypes) {
    lc::LinearArgs a;
    a.M = M, a.K = K, a.N = N, a.xq = q.xq.data(), a.x_scale = q.xs.data(), a.xq_sums = q.sums.data();
    a.packed = packed.data(), a.group = group, a.y_dtype = t;
    a.bias = (M + int64_t(t)) % 2 ? bias.data() : nullptr;
    run_and_check(kt, a, kt.linear_da8w4, want, what);
  }
}

}  // namespace

// Every row count of the decode and prefill tiles (0; 1-4 decode, one panel at a time; 5, 13: one and two
// balanced prefill tiles of two panels; 260: row blocks of 64 and a tail), K of one group up to many, group sizes
// from 8 to per channel, N not a multiple of 16 (1: one panel; 40 and 100: pairs of panels and a single one, split
// across two ranges as two threads would), symmetric and asymmetric.
TEST(linear_da8w4_all_paths) {
  for (const KernelTable* kt : runnable_variants()) {
    const bool emulated = std::strstr(kt->name, "-emu") != nullptr;
    for (auto [K, group] : {std::pair<int64_t, int64_t>{8, 8}, {64, 8}, {96, 32}, {256, 64}, {512, 128},
                            {512, 256}, {264, 264}})
      for (bool symmetric : {false, true})
        for (int64_t N : {1, 40, 100}) {
          const Int4Weights w = random_int4(N, K, group, symmetric);
          const std::vector<float> bias = random_floats(N);
          for (int64_t M : {0, 1, 2, 3, 4, 5, 13, 260}) {
            if (emulated && M == 260 && K > 96) continue;  // emulation is slow; the row blocks are covered at K 96
            run_da8w4(*kt, w, random_floats(M * K, -5.f, 5.f), M, bias, "da8w4");
          }
        }
  }
}

// The int32 bound: nibbles and zero points at 0 and 15 against activations at +-127 make every product of a
// group 15 * 127 in magnitude and of one sign, so |d| = 15 * 127 * g, the most a group can hold, reached from
// both terms of acc - z * xsum (q = 15, z = 0 and q = 0, z = 15); up to g = kMaxGroupDA8W4 (rounded down to a
// multiple of 8), where d = 2^31 - 8.
void extreme_case(const KernelTable& kt, int64_t M, int64_t K, int64_t N, int64_t group) {
  Int4Weights w = random_int4(N, K, group, false);
  for (float& s : w.scales) s /= float(group);  // outputs within fp16's range
  const int64_t G = K / group;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      const bool high = (n + g) % 2 == 0;
      for (int64_t k = g * group; k < (g + 1) * group; ++k) w.q[n * K + k] = high ? 15 : 0;
      w.zeros[n * G + g] = high ? 0 : 15;
    }
  std::vector<float> x(size_t(M * K));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) x[i * K + k] = (i + k / group) % 3 ? 3.f : -3.f;  // xq = +-127
  run_da8w4(kt, w, x, M, random_floats(N), "da8w4 extremes");
  w.zeros.clear();  // symmetric: z = 8, q - z = -8 or 7
  run_da8w4(kt, w, x, M, random_floats(N), "da8w4 extremes symmetric");
}

TEST(linear_da8w4_extremes) {
  const int64_t max_group = lc::kMaxGroupDA8W4 / 8 * 8;
  CHECK(int64_t(15) * 127 * max_group <= INT32_MAX && int64_t(15) * 127 * (max_group + 8) > INT32_MAX,
        "kMaxGroupDA8W4 is the int32 bound");
  for (const KernelTable* kt : runnable_variants()) {
    for (int64_t group : {8, 1024})
      for (int64_t M : {1, 5}) extreme_case(*kt, M, 2048, 17, group);
    extreme_case(*kt, 1, max_group, 1, max_group);
  }
}

// A row with a NaN: scale NaN, every output of that row NaN (the other rows unaffected).
TEST(linear_da8w4_nan_row) {
  for (const KernelTable* kt : runnable_variants()) {
    const int64_t M = 3, K = 64, N = 20, group = 32;
    const Int4Weights w = random_int4(N, K, group, false);
    std::vector<float> x = random_floats(M * K);
    x[1 * K + 7] = NAN;
    const std::vector<uint8_t> canonical = w.packed();
    std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::da8w4_panel_bytes(K, group)));
    lc::pack_da8w4(canonical.data(), w.scales.data(), w.zeros.data(), N, K, group, packed.data(), 0, lc::num_panels(N));
    const QuantizedRows q = quantize_rows(*kt, x, M, K, group);
    std::vector<float> y(size_t(M * N), 0.f);
    lc::LinearArgs a;
    a.M = M, a.K = K, a.N = N, a.xq = q.xq.data(), a.x_scale = q.xs.data(), a.xq_sums = q.sums.data();
    a.packed = packed.data(), a.group = group, a.y = y.data();
    kt->linear_da8w4(*kt, a, 0, lc::num_panels(N));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n)
        CHECK(std::isnan(y[i * N + n]) == (i == 1), kt->name, " y[", i, "][", n, "] = ", y[i * N + n]);
  }
}
