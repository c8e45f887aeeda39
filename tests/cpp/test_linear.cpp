// The three linear drivers (cpu/kernels/linear.h) with every variant's table: decode (M <= 4) and tiled
// paths, row blocks of 64 and their tails, K-chunks of 256 and their tails, groups spanning chunks, N not a
// multiple of 16, every output dtype, with and without bias, and split panel ranges as threads split them.
// Outputs start as NaN, so an element the drivers forget to write fails.
#define LOWBIT_TEST_MAIN
#include "linear_reference.h"

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
      for (bool symmetric : {false, true})
        for (int64_t N : kNs) {
          const Int4Weights w = random_int4(N, K, group, symmetric);
          const std::vector<uint8_t> canonical = w.packed();
          std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::a16w4_panel_bytes(K, group)));
          lc::pack_a16w4(canonical.data(), w.scales.data(), symmetric ? nullptr : w.zeros.data(), N, K, group,
                         packed.data(), 0, lc::num_panels(N));
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
  const Int4Weights w = random_int4(N, K, group, false);
  const std::vector<uint8_t> canonical = w.packed();
  std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::a16w4_panel_bytes(K, group)));
  CHECK(lc::a16w4_panel_bytes(K, group) >= (int64_t(64) << 10), "the panels must be long");
  lc::pack_a16w4(canonical.data(), w.scales.data(), w.zeros.data(), N, K, group, packed.data(), 0, lc::num_panels(N));
  for (const KernelTable* kt : runnable_variants())
    for (int64_t M = 1; M <= lc::kGemvRows; ++M) {
      const std::vector<float> x = random_bf16_floats(M * K);
      const std::vector<uint16_t> xb = to_bf16(x);
      const auto want = expectations(M, N, [&](int64_t i, int64_t n) { return expect_a16w4(x.data(), K, w, nullptr, i, n); });
      lc::LinearArgs a;
      a.M = M, a.K = K, a.N = N, a.x = x.data(), a.x_bf16 = xb.data(), a.packed = packed.data();
      a.y_dtype = ActDType::bf16, a.group = group;
      run_and_check(*kt, a, kt->linear_a16w4, want, "a16w4 long panels");
    }
}
