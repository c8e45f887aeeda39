// The micro-kernels of every variant against values computed here in double (or exactly in int64), on
// panels built by the packing code: widening and dequantization bit for bit, fp32 GEMM/GEMV within the worst-case
// summation bound gamma_n, int8 GEMM exact up to the largest K the ops accept, activation quantization bit for
// bit against the generic variant. Row counts cover every register-tile remainder (6-row fp32 tiles, 4-row
// int8 tiles, 1-4 decode rows); K covers vector tails and group boundaries.
#define LOWBIT_TEST_MAIN
#include "util.h"

#include "cpu/kernels/generic/generic.h"
#include "cpu/kernels/pack.h"

using namespace lowbit_test;
namespace lc = lowbit::cpu;

namespace {

std::vector<uint8_t> pack8(const Int8Weights& w) {
  std::vector<uint8_t> out(static_cast<size_t>(lc::num_panels(w.N) * lc::a16w8_panel_bytes(w.K)));
  lc::pack_a16w8(w.q.data(), w.scales.data(), w.N, w.K, out.data(), 0, lc::num_panels(w.N));
  return out;
}

std::vector<uint8_t> pack4(const Int4Weights& w) {
  std::vector<uint8_t> out(static_cast<size_t>(lc::num_panels(w.N) * lc::a16w4_panel_bytes(w.K, w.group, w.has_offsets())));
  const std::vector<uint8_t> packed = w.packed();
  if (w.has_offsets())
    lc::pack_a16w4_offsets(packed.data(), w.scales.data(), w.offsets.data(), w.N, w.K, w.group, out.data(), 0,
                           lc::num_panels(w.N));
  else
    lc::pack_a16w4(packed.data(), w.scales.data(), w.zeros.empty() ? nullptr : w.zeros.data(), w.N, w.K, w.group,
                   out.data(), 0, lc::num_panels(w.N));
  return out;
}

}  // namespace

TEST(widen_a16w8_is_exact_and_unscaled) {
  const int64_t N = 13, K = 37;  // 13: three zero-padded columns in the panel
  const Int8Weights w = random_int8(N, K);
  const std::vector<uint8_t> panel = pack8(w);
  for (const KernelTable* kt : runnable_variants()) {
    for (auto [k0, kc] : {std::pair<int64_t, int64_t>{0, K}, {0, 1}, {5, 9}, {36, 1}, {8, 29}}) {
      Guarded<float> dst(kc * kPanel, NAN, -7.f);
      kt->widen_a16w8(panel.data(), k0, kc, dst.get());
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t j = 0; j < kPanel; ++j) {
          const float want = j < N ? float(w.q[j * K + k0 + k]) : 0.f;
          CHECK(bits(dst.get()[k * kPanel + j]) == bits(want), kt->name, " k0=", k0, " k=", k, " j=", j);
        }
      CHECK(dst.guard_intact(), kt->name, " wrote past kc=", kc);
    }
  }
}

TEST(widen_a16w4_is_exact_across_groups) {
  for (const KernelTable* kt : runnable_variants()) {
    for (auto [K, group] : {std::pair<int64_t, int64_t>{64, 2}, {96, 32}, {96, 96}, {48, 8}}) {
      for (Int4Form form : kInt4Forms) {
        const int64_t N = 16;
        const Int4Weights w = random_int4(N, K, group, form);
        const std::vector<uint8_t> panel = pack4(w);
        // even chunks: from a group start, mid-group, across several groups, to the end
        for (auto [k0, kc] : {std::pair<int64_t, int64_t>{0, K}, {0, 2}, {2, 10}, {K - 2, 2}, {6, K - 6}}) {
          Guarded<float> dst(kc * kPanel, NAN, -7.f);
          kt->widen_a16w4(panel.data(), group, w.has_offsets(), k0, kc, dst.get());
          for (int64_t k = 0; k < kc; ++k)
            for (int64_t j = 0; j < N; ++j) {
              const float want = float(w.q[j * K + k0 + k]);
              CHECK(bits(dst.get()[k * kPanel + j]) == bits(want), kt->name, " K=", K, " g=", group, " k0=", k0,
                    " k=", k, " j=", j);
            }
          CHECK(dst.guard_intact(), kt->name, " wrote past kc=", kc);
        }
      }
    }
  }
}

TEST(gemm_f32_panel_every_row_tail) {
  for (const KernelTable* kt : runnable_variants()) {
    for (int64_t m = 1; m <= 14; ++m) {
      for (int64_t kc : {1, 7, 64, 300}) {
        for (bool accumulate : {false, true}) {
          const int64_t lda = kc + 3;  // a row stride larger than kc, as for a K-chunk of x
          const std::vector<float> a = random_floats(m * lda), b = random_floats(kc * kPanel);
          const std::vector<float> c0 = random_floats(m * kPanel, -4.f, 4.f);
          Guarded<float> c(m * kPanel, NAN, -7.f);
          std::copy(c0.begin(), c0.end(), c.get());
          kt->gemm_f32_panel(a.data(), lda, b.data(), kc, c.get(), m, accumulate);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < kPanel; ++j) {
              double want = accumulate ? c0[i * kPanel + j] : 0.0, mag = std::fabs(want);
              for (int64_t k = 0; k < kc; ++k) {
                want += double(a[i * lda + k]) * b[k * kPanel + j];
                mag += std::fabs(double(a[i * lda + k]) * b[k * kPanel + j]);
              }
              const double err = std::fabs(c.get()[i * kPanel + j] - want);
              CHECK(err <= gamma32(kc + 1) * mag, kt->name, " m=", m, " kc=", kc, " i=", i, " j=", j, " err=", err);
            }
          CHECK(c.guard_intact(), kt->name, " wrote past m=", m);
        }
      }
    }
  }
}

// The fused tiled chunks against the two steps they stand for, in the same variant: the raw dot products bit for
// bit (same products, same order), for every row count up to 14 (one fused tile of up to 6 or 4 rows, then
// tiles from the widened chunk), odd and even chunk lengths, chunks starting mid-panel.
TEST(gemm_a16w8_chunk_is_widen_then_gemm) {
  for (const KernelTable* kt : runnable_variants()) {
    const int64_t K = 300;
    const Int8Weights w = random_int8(16, K);
    const std::vector<uint8_t> panel = pack8(w);
    for (int64_t m = 1; m <= 14; ++m)
      for (auto [k0, kc] : {std::pair<int64_t, int64_t>{0, 1}, {0, 256}, {5, 7}, {256, 44}})
        for (bool accumulate : {false, true}) {
          const int64_t lda = K + 3;
          const std::vector<float> a = random_floats(m * lda), c0 = random_floats(m * kPanel, -4.f, 4.f);
          std::vector<float> tile(static_cast<size_t>(kc * kPanel)), want(c0), scratch(tile.size());
          kt->widen_a16w8(panel.data(), k0, kc, tile.data());
          kt->gemm_f32_panel(a.data() + k0, lda, tile.data(), kc, want.data(), m, accumulate);
          Guarded<float> c(m * kPanel, NAN, -7.f);
          std::copy(c0.begin(), c0.end(), c.get());
          kt->gemm_a16w8_chunk(panel.data(), k0, kc, a.data() + k0, lda, c.get(), m, accumulate, scratch.data());
          for (int64_t i = 0; i < m * kPanel; ++i)
            CHECK(bits(c.get()[i]) == bits(want[i]), kt->name, " m=", m, " k0=", k0, " kc=", kc, " acc=", accumulate,
                  " i=", i);
          CHECK(c.guard_intact(), kt->name, " wrote past m=", m);
        }
  }
}

TEST(gemm_a16w4_chunk_is_widen_then_gemm_then_fold) {
  for (const KernelTable* kt : runnable_variants()) {
    for (auto [K, group] : {std::pair<int64_t, int64_t>{64, 32}, {512, 512}, {48, 8}})
    for (Int4Form form : {Int4Form::zeros, Int4Form::offsets}) {
      const Int4Weights w = random_int4(16, K, group, form);
      const std::vector<uint8_t> panel = pack4(w);
      for (int64_t m = 1; m <= 14; ++m)
        // a whole group, its first part (no fold), its last part (accumulates, then folds), a middle part
        for (auto [k0, kc] : {std::pair<int64_t, int64_t>{0, group}, {0, group / 2}, {group / 2, group / 2},
                              {group / 4 / 2 * 2, 2}}) {
          const int64_t lda = K + 3, ldxs = 5;
          const std::vector<float> a = random_floats(m * lda), xsum = random_floats(m * ldxs, -9.f, 9.f);
          const std::vector<float> g0 = random_floats(m * kPanel, -4.f, 4.f), c0 = random_floats(m * kPanel);
          const bool accumulate = k0 % group != 0, folds = (k0 + kc) % group == 0;
          std::vector<float> tile(static_cast<size_t>(kc * kPanel)), want(g0), scratch(tile.size());
          kt->widen_a16w4(panel.data(), group, w.has_offsets(), k0, kc, tile.data());
          kt->gemm_f32_panel(a.data() + k0, lda, tile.data(), kc, want.data(), m, accumulate);
          Guarded<float> g(m * kPanel, NAN, -7.f), c(m * kPanel, NAN, -7.f);
          std::copy(g0.begin(), g0.end(), g.get());
          std::copy(c0.begin(), c0.end(), c.get());
          kt->gemm_a16w4_chunk(panel.data(), group, w.has_offsets(), k0, kc, a.data() + k0, lda, xsum.data(), ldxs, g.get(), c.get(), m,
                               scratch.data());
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < kPanel; ++j) {
              const int64_t e = i * kPanel + j;
              CHECK(bits(g.get()[e]) == bits(want[e]), kt->name, " K=", K, " m=", m, " k0=", k0, " kc=", kc, " e=", e);
              const double s = w.scale(j, k0), z = w.zero(j, k0), o = w.offset(j, k0), xs = xsum[i * ldxs];
              // c + s * (g - z * xs) + o * xs: at most six fp32 operations (fused or not) on these magnitudes
              const double fold = folds ? s * (double(want[e]) - z * xs) + o * xs : 0.0;
              const double mag = std::fabs(c0[e]) + std::fabs(s) * (std::fabs(want[e]) + z * std::fabs(xs)) +
                                 std::fabs(o * xs);
              CHECK(std::fabs(c.get()[e] - (c0[e] + fold)) <= gamma32(6) * mag, kt->name, " K=", K, " m=", m,
                    " k0=", k0, " kc=", kc, " c[", e, "] = ", c.get()[e], ", expected ", c0[e] + fold);
            }
          CHECK(g.guard_intact() && c.guard_intact(), kt->name, " wrote past m=", m);
        }
    }
  }
}

TEST(gemv_a16w8_every_row_count) {
  for (const KernelTable* kt : runnable_variants()) {
    for (int64_t K : {1, 5, 64, 257}) {
      const Int8Weights w = random_int8(16, K);
      const std::vector<uint8_t> panel = pack8(w);
      for (int64_t m = 1; m <= lc::kGemvRows; ++m) {
        const int64_t ldx = K + 5;
        const std::vector<float> x = random_floats(m * ldx);
        Guarded<float> c(m * kPanel, NAN, -7.f);
        kt->gemv_a16w8(panel.data(), K, x.data(), ldx, m, c.get());
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < kPanel; ++j) {
            double want = 0, mag = 0;
            for (int64_t k = 0; k < K; ++k) {
              want += double(x[i * ldx + k]) * w.q[j * K + k] * w.scales[j];
              mag += std::fabs(double(x[i * ldx + k]) * w.q[j * K + k] * w.scales[j]);
            }
            const double err = std::fabs(c.get()[i * kPanel + j] - want);
            // K products summed in fp32 (w and x exact), then one rounding by the scale
            CHECK(err <= gamma32(K + 1) * mag, kt->name, " K=", K, " m=", m, " i=", i, " j=", j, " err=", err);
          }
        CHECK(c.guard_intact(), kt->name, " wrote past m=", m);
      }
    }
  }
}

TEST(gemv_a16w4_every_row_count_and_group) {
  for (const KernelTable* kt : runnable_variants()) {
    for (auto [K, group] : {std::pair<int64_t, int64_t>{2, 2}, {64, 16}, {256, 256}, {384, 128}}) {
      for (Int4Form form : kInt4Forms) {
        const Int4Weights w = random_int4(16, K, group, form);
        const std::vector<uint8_t> panel = pack4(w);
        const int64_t groups = K / group;
        for (int64_t m = 1; m <= lc::kGemvRows; ++m) {
          const int64_t ldx = K + 2;
          const std::vector<float> x = random_floats(m * ldx);
          std::vector<float> xsum(size_t(m * groups), 0.f);  // as the driver computes them: fp32, in order
          for (int64_t i = 0; i < m; ++i)
            for (int64_t k = 0; k < K; ++k) xsum[i * groups + k / group] += x[i * ldx + k];
          Guarded<float> c(m * kPanel, NAN, -7.f);
          kt->gemv_a16w4(panel.data(), K, group, w.has_offsets(), x.data(), ldx, xsum.data(), m, c.get());
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < kPanel; ++j) {
              double want = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double xk = x[i * ldx + k];
                want += xk * w.value(j, k);
                // the folded form's terms: x.q, z * sum(x) (or offset * sum(x)) separately
                mag += std::fabs(xk) * w.folded(j, k);
              }
              // per group: g fp32 products, the fp32 sum of x, z * xs, the subtraction and the scaling, the offset
              // term; then one addition per group into the output: within gamma_(K + 2 groups + 4) of the terms
              const double err = std::fabs(c.get()[i * kPanel + j] - want);
              CHECK(err <= gamma32(K + 2 * groups + 4) * mag, kt->name, " K=", K, " g=", group, " m=", m, " i=", i,
                    " j=", j, " err=", err);
            }
          CHECK(c.guard_intact(), kt->name, " wrote past m=", m);
        }
      }
    }
  }
}

TEST(gemm_s8_panel_is_exact_for_every_row_tail) {
  for (const KernelTable* kt : runnable_variants()) {
    for (int64_t K4 : {4, 8, 64, 260}) {
      std::vector<int8_t> wpanel(static_cast<size_t>(K4 * kPanel));  // [K4/4][16 columns][4 k]
      for (auto& v : wpanel) v = int8_t(randint(-128, 127));
      for (int64_t m = 1; m <= 9; ++m) {
        const int64_t lda = K4 + 8;
        std::vector<int8_t> a(static_cast<size_t>(m * lda));
        for (auto& v : a) v = int8_t(randint(-127, 127));  // quantized activations never hold -128
        Guarded<int32_t> c(m * kPanel, 0x7eadbeef, -7);
        kt->gemm_s8_panel(a.data(), lda, wpanel.data(), K4, c.get(), m);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < kPanel; ++j) {
            int64_t want = 0;
            for (int64_t k = 0; k < K4; ++k) want += int64_t(a[i * lda + k]) * wpanel[(k / 4) * 64 + j * 4 + k % 4];
            CHECK(c.get()[i * kPanel + j] == want, kt->name, " K4=", K4, " m=", m, " i=", i, " j=", j);
          }
        CHECK(c.guard_intact(), kt->name, " wrote past m=", m);
      }
    }
  }
}

// At the largest K the ops accept (kMaxK8), the most extreme products in both signs still sum within int32.
TEST(gemm_s8_panel_is_exact_at_the_largest_accepted_k) {
  const int64_t K4 = lc::round_up4(lc::kMaxK8);
  std::vector<int8_t> w(static_cast<size_t>(K4 * kPanel), int8_t(-128));
  std::vector<int8_t> a(static_cast<size_t>(2 * K4), int8_t(-127));
  std::fill(a.begin() + K4, a.end(), int8_t(127));
  for (int64_t k = lc::kMaxK8; k < K4; ++k) a[k] = a[K4 + k] = 0;  // the zero padding of K to K4
  for (const KernelTable* kt : runnable_variants()) {
    int32_t c[2 * kPanel];
    kt->gemm_s8_panel(a.data(), K4, w.data(), K4, c, 2);
    const int64_t extreme = int64_t(127) * 128 * lc::kMaxK8;
    CHECK(extreme <= INT32_MAX, "kMaxK8 = ", lc::kMaxK8, " lets an int32 sum overflow");
    for (int64_t j = 0; j < kPanel; ++j) {
      CHECK(c[j] == extreme, kt->name, " j=", j, " got ", c[j]);
      CHECK(c[kPanel + j] == -extreme, kt->name, " j=", j, " got ", c[kPanel + j]);
    }
  }
}

TEST(quantize_row_s8_matches_generic_bit_for_bit) {
  for (const KernelTable* kt : runnable_variants()) {
    for (int64_t K = 1; K <= 41; ++K) {
      const int64_t K4 = lc::round_up4(K);
      for (int variant = 0; variant < 5; ++variant) {
        std::vector<float> x = random_floats(K, -3.f, 3.f);
        if (variant == 1) std::fill(x.begin(), x.end(), 0.f);              // all zero: scale 0
        if (variant == 2) x[size_t(K / 2)] = NAN;                          // non-finite: scale NaN
        if (variant == 3) x[size_t(K - 1)] = -INFINITY;
        if (variant == 4) {                                                // ties at half steps
          x.assign(size_t(K), 0.f);
          x[0] = 127.f;
          for (int64_t k = 1; k < K; ++k) x[k] = float(k % 7) - 2.5f;
        }
        Guarded<int8_t> q(K4, 99, 77), qg(K4, 99, 77);
        float s = -1.f, sg = -1.f;
        kt->quantize_row_s8(x.data(), K, K4, q.get(), &s);
        lc::generic::quantize_row_s8(x.data(), K, K4, qg.get(), &sg);
        CHECK(std::memcmp(q.get(), qg.get(), size_t(K4)) == 0, kt->name, " K=", K, " case ", variant);
        CHECK(bits(s) == bits(sg) || (std::isnan(s) && std::isnan(sg)), kt->name, " K=", K, " case ", variant);
        CHECK(q.guard_intact(), kt->name, " wrote past K4=", K4);
        for (int64_t k = K; k < K4; ++k) CHECK(q.get()[k] == 0, kt->name, " padding k=", k, " not zero");
        if (variant == 1) CHECK(s == 0.f, kt->name, " zero row scale ", s);
        if (variant == 2 || variant == 3) CHECK(std::isnan(s), kt->name, " non-finite row scale ", s);
        if (variant == 0 || variant == 4) {
          // semantics (lowbit.reference): scale = amax / 127, |q * scale - x| <= scale / 2, plus the fp32
          // rounding of x * (127 / amax) (at most 127 * 3 ulp = 2.3e-5 in units of q)
          float amax = 0.f;
          for (float v : x) amax = std::fmax(amax, std::fabs(v));
          CHECK(s == amax / 127.f, kt->name, " K=", K, " scale ", s);
          for (int64_t k = 0; k < K; ++k)
            CHECK(std::fabs(q.get()[k] * double(s) - x[k]) <= s * (0.5 + 1e-4), kt->name, " K=", K, " k=", k);
        }
      }
    }
  }
}
