// Packing of the three canonical formats into panels (layouts in csrc/cpu/kernels/api.h), read back byte by
// byte: scales, zero points, weights in kernel order, column sums, zero padding of the last panel (N % 16)
// and of K to a multiple of 4 (da8w8), and that a panel range [p0, p1) writes exactly its own panels.
#define LOWBIT_TEST_MAIN
#include "util.h"

#include "cpu/kernels/pack.h"

using namespace lowbit_test;
namespace lc = lowbit::cpu;

namespace {

constexpr uint8_t kUntouched = 0xEE;

float f32_at(const uint8_t* p, int64_t j) {
  float v;
  std::memcpy(&v, p + 4 * j, 4);
  return v;
}

int32_t i32_at(const uint8_t* p, int64_t j) {
  int32_t v;
  std::memcpy(&v, p + 4 * j, 4);
  return v;
}

// Pack only panels [p0, p1) into a buffer filled with kUntouched and check every other panel is untouched.
template <typename PackFn>
std::vector<uint8_t> pack_range(int64_t N, int64_t panel_bytes, int64_t p0, int64_t p1, PackFn pack) {
  std::vector<uint8_t> out(size_t(lc::num_panels(N) * panel_bytes), kUntouched);
  pack(out.data(), p0, p1);
  for (int64_t p = 0; p < lc::num_panels(N); ++p) {
    if (p >= p0 && p < p1) continue;
    bool untouched = true;
    for (int64_t b = 0; b < panel_bytes; ++b) untouched &= out[p * panel_bytes + b] == kUntouched;
    CHECK(untouched, "panel ", p, " outside [", p0, ", ", p1, ") was written");
  }
  return out;
}

const int64_t kNs[] = {1, 15, 16, 17, 33};

}  // namespace

TEST(a16w8_layout) {
  for (int64_t N : kNs)
    for (int64_t K : {1, 3, 64}) {
      const Int8Weights w = random_int8(N, K);
      const int64_t bytes = lc::a16w8_panel_bytes(K), P = lc::num_panels(N);
      CHECK(bytes == 16 * 4 + K * 16, "a16w8_panel_bytes(", K, ")");
      for (auto [p0, p1] : {std::pair<int64_t, int64_t>{0, P}, {P - 1, P}}) {
        auto out = pack_range(N, bytes, p0, p1, [&](uint8_t* o, int64_t a, int64_t b) {
          lc::pack_a16w8(w.q.data(), w.scales.data(), N, K, o, a, b);
        });
        for (int64_t p = p0; p < p1; ++p) {
          const uint8_t* panel = out.data() + p * bytes;
          for (int64_t j = 0; j < kPanel; ++j) {
            const int64_t n = p * kPanel + j;
            CHECK(f32_at(panel, j) == (n < N ? w.scales[n] : 0.f), "N=", N, " K=", K, " scale of column ", n);
            for (int64_t k = 0; k < K; ++k) {
              const int8_t got = int8_t(panel[64 + k * kPanel + j]);
              CHECK(got == (n < N ? w.q[n * K + k] : 0), "N=", N, " K=", K, " n=", n, " k=", k);
            }
          }
        }
      }
    }
}

TEST(a16w4_layout) {
  for (int64_t N : kNs)
    for (auto [K, group] : {std::pair<int64_t, int64_t>{2, 2}, {6, 2}, {64, 16}, {64, 64}}) {
      for (bool symmetric : {false, true}) {
        const Int4Weights w = random_int4(N, K, group, symmetric);
        const std::vector<uint8_t> canonical = w.packed();
        const int64_t bytes = lc::a16w4_panel_bytes(K, group), gbytes = lc::a16w4_group_bytes(group);
        const int64_t P = lc::num_panels(N);
        // per group: 16 fp32 scales, 16 uint8 zero points, g/2 rows of 16 bytes
        CHECK(bytes == K / group * (16 * 5 + group / 2 * 16), "a16w4_panel_bytes(", K, ", ", group, ")");
        for (auto [p0, p1] : {std::pair<int64_t, int64_t>{0, P}, {P - 1, P}}) {
          auto out = pack_range(N, bytes, p0, p1, [&](uint8_t* o, int64_t a, int64_t b) {
            lc::pack_a16w4(canonical.data(), w.scales.data(), symmetric ? nullptr : w.zeros.data(), N, K, group, o,
                           a, b);
          });
          for (int64_t p = p0; p < p1; ++p)
            for (int64_t g = 0; g < K / group; ++g) {
              const uint8_t* gp = out.data() + p * bytes + g * gbytes;
              for (int64_t j = 0; j < kPanel; ++j) {
                const int64_t n = p * kPanel + j;
                const bool real = n < N;
                CHECK(f32_at(gp, j) == (real ? w.scale(n, g * group) : 0.f), "N=", N, " n=", n, " g=", g);
                CHECK(gp[64 + j] == (real ? w.zero(n, g * group) : 0), "N=", N, " n=", n, " g=", g);
                for (int64_t kk = 0; kk < group / 2; ++kk) {
                  const int64_t k = g * group + 2 * kk;
                  const uint8_t want = real ? uint8_t(w.q[n * K + k] | w.q[n * K + k + 1] << 4) : 0;
                  CHECK(gp[80 + kk * kPanel + j] == want, "N=", N, " K=", K, " n=", n, " k=", k);
                }
              }
            }
        }
      }
    }
}

TEST(a16w4_offsets_layout) {
  for (int64_t N : kNs)
    for (auto [K, group] : {std::pair<int64_t, int64_t>{2, 2}, {6, 2}, {64, 16}, {64, 64}}) {
      const Int4Weights w = random_int4(N, K, group, Int4Form::offsets);
      const std::vector<uint8_t> canonical = w.packed();
      const int64_t bytes = lc::a16w4_panel_bytes(K, group, true), gbytes = lc::a16w4_group_bytes(group, true);
      const int64_t P = lc::num_panels(N);
      // per group: 16 fp32 scales, 16 fp32 offsets, g/2 rows of 16 bytes; never the size of the zero-point form
      CHECK(bytes == K / group * (16 * 8 + group / 2 * 16), "a16w4_panel_bytes(", K, ", ", group, ", true)");
      CHECK(bytes != lc::a16w4_panel_bytes(K, group), "the two forms must differ in size");
      for (auto [p0, p1] : {std::pair<int64_t, int64_t>{0, P}, {P - 1, P}}) {
        auto out = pack_range(N, bytes, p0, p1, [&](uint8_t* o, int64_t a, int64_t b) {
          lc::pack_a16w4_offsets(canonical.data(), w.scales.data(), w.offsets.data(), N, K, group, o, a, b);
        });
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t g = 0; g < K / group; ++g) {
            const uint8_t* gp = out.data() + p * bytes + g * gbytes;
            for (int64_t j = 0; j < kPanel; ++j) {
              const int64_t n = p * kPanel + j;
              const bool real = n < N;
              CHECK(f32_at(gp, j) == (real ? w.scale(n, g * group) : 0.f), "N=", N, " n=", n, " g=", g);
              CHECK(f32_at(gp + 64, j) == (real ? w.offset(n, g * group) : 0.f), "N=", N, " n=", n, " g=", g);
              for (int64_t kk = 0; kk < group / 2; ++kk) {
                const int64_t k = g * group + 2 * kk;
                const uint8_t want = real ? uint8_t(w.q[n * K + k] | w.q[n * K + k + 1] << 4) : 0;
                CHECK(gp[128 + kk * kPanel + j] == want, "N=", N, " K=", K, " n=", n, " k=", k);
              }
            }
          }
      }
    }
}

TEST(da8w8_layout_sums_and_k_padding) {
  for (int64_t N : kNs)
    for (int64_t K : {1, 2, 3, 4, 5, 63}) {
      const Int8Weights w = random_int8(N, K);
      const int64_t K4 = lc::round_up4(K), bytes = lc::da8w8_panel_bytes(K), P = lc::num_panels(N);
      CHECK(K4 % 4 == 0 && K4 >= K && K4 < K + 4, "round_up4(", K, ") = ", K4);
      CHECK(bytes == 16 * 8 + K4 * 16, "da8w8_panel_bytes(", K, ")");
      for (auto [p0, p1] : {std::pair<int64_t, int64_t>{0, P}, {P - 1, P}}) {
        auto out = pack_range(N, bytes, p0, p1, [&](uint8_t* o, int64_t a, int64_t b) {
          lc::pack_da8w8(w.q.data(), w.scales.data(), N, K, o, a, b);
        });
        for (int64_t p = p0; p < p1; ++p) {
          const uint8_t* panel = out.data() + p * bytes;
          for (int64_t j = 0; j < kPanel; ++j) {
            const int64_t n = p * kPanel + j;
            const bool real = n < N;
            int32_t sum = 0;
            for (int64_t k = 0; k < K4; ++k) {
              const int8_t want = real && k < K ? w.q[n * K + k] : 0;
              sum += want;
              CHECK(int8_t(panel[128 + (k / 4) * 64 + j * 4 + k % 4]) == want, "N=", N, " K=", K, " n=", n, " k=", k);
            }
            CHECK(f32_at(panel, j) == (real ? w.scales[n] : 0.f), "N=", N, " scale of column ", n);
            CHECK(i32_at(panel + 64, j) == sum, "N=", N, " K=", K, " column sum of ", n);
          }
        }
      }
    }
}

TEST(da8w4_layout) {
  for (int64_t N : kNs)
    for (auto [K, group] : {std::pair<int64_t, int64_t>{8, 8}, {24, 8}, {64, 32}, {64, 64}}) {
      for (bool symmetric : {false, true}) {
        const Int4Weights w = random_int4(N, K, group, symmetric);
        const std::vector<uint8_t> canonical = w.packed();
        const int64_t bytes = lc::da8w4_panel_bytes(K, group), gbytes = lc::da8w4_group_bytes(group);
        const int64_t P = lc::num_panels(N);
        // per group: 16 fp32 scales, 16 uint8 zero points, g/8 rows of 16 columns x 4 bytes
        CHECK(gbytes == 80 + 8 * group, "da8w4_group_bytes(", group, ")");
        CHECK(bytes == K / group * gbytes, "da8w4_panel_bytes(", K, ", ", group, ")");
        for (auto [p0, p1] : {std::pair<int64_t, int64_t>{0, P}, {P - 1, P}}) {
          auto out = pack_range(N, bytes, p0, p1, [&](uint8_t* o, int64_t a, int64_t b) {
            lc::pack_da8w4(canonical.data(), w.scales.data(), symmetric ? nullptr : w.zeros.data(), N, K, group, o,
                           a, b);
          });
          for (int64_t p = p0; p < p1; ++p)
            for (int64_t g = 0; g < K / group; ++g) {
              const uint8_t* gp = out.data() + p * bytes + g * gbytes;
              for (int64_t j = 0; j < kPanel; ++j) {
                const int64_t n = p * kPanel + j;
                const bool real = n < N;
                CHECK(f32_at(gp, j) == (real ? w.scale(n, g * group) : 0.f), "N=", N, " n=", n, " g=", g);
                CHECK(gp[64 + j] == (real ? w.zero(n, g * group) : 0), "N=", N, " n=", n, " g=", g);
                for (int64_t r = 0; r < group / 8; ++r)
                  for (int64_t t = 0; t < 4; ++t) {
                    const int64_t k = g * group + 8 * r + t;
                    const uint8_t want = real ? uint8_t(w.q[n * K + k] | w.q[n * K + k + 4] << 4) : 0;
                    CHECK(gp[80 + r * 64 + j * 4 + t] == want, "N=", N, " K=", K, " n=", n, " k=", k);
                  }
              }
            }
        }
      }
    }
}
