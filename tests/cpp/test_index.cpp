// The largest index arithmetic: outputs y[M][N] with M x N far beyond 2^31 (and byte offsets beyond 2^32),
// without the memory. Buffers are virtual reservations (MAP_NORESERVE): only the pages of the one far panel a
// test touches ever become resident. A 32-bit product anywhere in the offset math (row * N, panel * bytes,
// n * K) would land the writes elsewhere, and the exact elements checked here would stay unwritten.
#define LOWBIT_TEST_MAIN
#include <sys/mman.h>

#include <limits>

#include "linear_reference.h"

using namespace lowbit_test;

namespace {

// An anonymous, zero-filled, lazily committed mapping of `bytes` bytes.
struct Reserved {
  void* p = MAP_FAILED;
  size_t bytes;
  explicit Reserved(int64_t n) : bytes(size_t(n)) {
    p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  ~Reserved() {
    if (p != MAP_FAILED) munmap(p, bytes);
  }
  bool ok() const { return p != MAP_FAILED; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

constexpr int64_t kN = (int64_t(1) << 30) + 5;  // 2^26 full panels and a last one with 5 columns
constexpr int64_t kK = 8;                        // small K: the far panel is computed for real

// The last panel of a [M, kN] output: its 5 columns in every row are checked against the expectation.
template <typename Driver, typename Expect>
void far_panel(const KernelTable& kt, lc::LinearArgs a, Driver driver, Expect expect, const char* what) {
  const int64_t P = lc::num_panels(a.N);
  CHECK(a.M * a.N > (int64_t(1) << 31), "the test must exceed 2^31 elements");
  Reserved y(a.M * a.N * int64_t(element_size(a.y_dtype)));
  CHECK(y.ok(), "could not reserve the output");
  if (!y.ok()) return;
  a.y = y.p;
  driver(kt, a, P - 1, P);
  const int64_t n0 = (P - 1) * kPanel;
  for (int64_t i = 0; i < a.M; ++i)
    for (int64_t n = n0; n < a.N; ++n) {
      const Expected e = expect(i, n - n0);
      const double got = output_at(y.p, a.y_dtype, i * a.N + n);
      CHECK(within_bound(got, e.value, e.mag, e.roundings, a.y_dtype), kt.name, " ", what, " M=", a.M, " y[", i,
            "][", n, "] = ", got, ", expected ", e.value);
    }
}

// Canonical weights of the whole [kN, kK] matrix are reserved; only the last panel's rows hold data (the
// small `w` describes them as an [N - n0, K] matrix).
struct FarWeights {
  Reserved q8{kN * kK}, scales{kN * 4}, q4{kN * kK / 2}, scales4{kN * 4}, zeros4{kN};
  int64_t n0 = (lc::num_panels(kN) - 1) * kPanel;
  Int8Weights w8 = random_int8(kN - n0, kK);
  Int4Weights w4 = random_int4(kN - n0, kK, kK, false);  // one group per row
  FarWeights() {
    const std::vector<uint8_t> packed4 = w4.packed();
    std::memcpy(q8.as<int8_t>() + n0 * kK, w8.q.data(), w8.q.size());
    std::memcpy(scales.as<float>() + n0, w8.scales.data(), w8.scales.size() * 4);
    std::memcpy(q4.as<uint8_t>() + n0 * kK / 2, packed4.data(), packed4.size());
    std::memcpy(scales4.as<float>() + n0, w4.scales.data(), w4.scales.size() * 4);
    std::memcpy(zeros4.as<uint8_t>() + n0, w4.zeros.data(), w4.zeros.size());
  }
  bool ok() const { return q8.ok() && scales.ok() && q4.ok() && scales4.ok() && zeros4.ok(); }
};

}  // namespace

TEST(panel_counts_do_not_overflow) {
  constexpr int64_t big = std::numeric_limits<int64_t>::max();
  CHECK(lc::num_panels(big) == big / 16 + 1, "num_panels(INT64_MAX) = ", lc::num_panels(big));
  CHECK(lc::num_panels(big - 15) == big / 16, "num_panels(INT64_MAX - 15) (a multiple of 16)");
  CHECK(lc::num_panels(16) == 1 && lc::num_panels(17) == 2 && lc::num_panels(1) == 1, "num_panels small");
  CHECK(lc::num_panels(kN) == (int64_t(1) << 26) + 1, "num_panels(kN)");
}

TEST(far_panel_of_every_mode_beyond_2_pow_31_outputs) {
  FarWeights fw;
  CHECK(fw.ok(), "could not reserve the weights");
  if (!fw.ok()) return;
  const int64_t P = lc::num_panels(kN);
  for (const KernelTable* kt : runnable_variants()) {
    // packing the far panel reads weight rows n * K beyond 2^32 bytes and writes at panel P - 1
    Reserved p8(P * lc::a16w8_panel_bytes(kK)), p4(P * lc::a16w4_panel_bytes(kK, kK)),
        pd(P * lc::da8w8_panel_bytes(kK));
    CHECK(p8.ok() && p4.ok() && pd.ok(), "could not reserve the packed weights");
    if (!(p8.ok() && p4.ok() && pd.ok())) return;
    lc::pack_a16w8(fw.q8.as<int8_t>(), fw.scales.as<float>(), kN, kK, p8.as<uint8_t>(), P - 1, P);
    lc::pack_a16w4(fw.q4.as<uint8_t>(), fw.scales4.as<float>(), fw.zeros4.as<uint8_t>(), kN, kK, kK,
                   p4.as<uint8_t>(), P - 1, P);
    lc::pack_da8w8(fw.q8.as<int8_t>(), fw.scales.as<float>(), kN, kK, pd.as<uint8_t>(), P - 1, P);

    // M = 3: the decode path, M = 7: a fused 4-row tile and a 3-row tile; y offsets reach 6 * 2^30 elements (24 GiB of fp32)
    for (int64_t M : {3, 7}) {
      const std::vector<float> x = random_bf16_floats(M * kK);
      const std::vector<uint16_t> xb = to_bf16(x);
      for (ActDType t : {ActDType::f32, ActDType::bf16}) {
        lc::LinearArgs a;
        a.M = M, a.K = kK, a.N = kN, a.x = x.data(), a.y_dtype = t;
        a.x_bf16 = t == ActDType::bf16 ? xb.data() : nullptr;
        a.packed = p8.as<uint8_t>();
        far_panel(*kt, a, kt->linear_a16w8,
                  [&](int64_t i, int64_t n) { return expect_a16w8(x.data(), kK, fw.w8, nullptr, i, n); }, "a16w8");
        a.packed = p4.as<uint8_t>(), a.group = kK;
        far_panel(*kt, a, kt->linear_a16w4,
                  [&](int64_t i, int64_t n) { return expect_a16w4(x.data(), kK, fw.w4, nullptr, i, n); }, "a16w4");
        std::vector<int8_t> xq(static_cast<size_t>(M * kK));
        std::vector<float> xs(static_cast<size_t>(M));
        for (int64_t i = 0; i < M; ++i) kt->quantize_row_s8(x.data() + i * kK, kK, kK, xq.data() + i * kK, &xs[i]);
        lc::LinearArgs d = a;
        d.x = nullptr, d.x_bf16 = nullptr, d.xq = xq.data(), d.x_scale = xs.data(), d.packed = pd.as<uint8_t>(), d.group = 0;
        far_panel(*kt, d, kt->linear_da8w8,
                  [&](int64_t i, int64_t n) { return expect_da8w8(xq.data(), xs.data(), kK, fw.w8, nullptr, i, n); },
                  "da8w8");
      }
    }
  }
}
