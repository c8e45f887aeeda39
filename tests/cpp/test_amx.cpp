// The AMX drivers (csrc/cpu/kernels/amx) on the shapes their tiles cut: 32-row blocks and their 16-row halves
// (M = 5 ... 33, 48, 260 past the 256-row block), one and two panels (N = 1, 17, 40, 48), K steps of 32 (bf16)
// and 64 (int8) with their zero-padded tails, a16w8 K-chunks of 512, a16w4 groups of 32 and 64 (several per
// chunk) and 768 (a group across chunks), plus the shapes they hand to the parent (M <= 4, fp32 activations,
// groups not a multiple of 32). Runs every amx variant this machine runs (amx-emu in LOWBIT_EMULATED_ISAS
// builds, amx where the CPU has AMX). Outputs start as NaN; the panels are split over two calls as threads do.
#define LOWBIT_TEST_MAIN
#include "linear_reference.h"

using namespace lowbit_test;

namespace {

const int64_t kMs[] = {1, 4, 5, 16, 17, 31, 32, 33, 48, 260};
const int64_t kNs[] = {1, 17, 40, 48};

std::vector<const KernelTable*> amx_variants() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : runnable_variants())
    if (std::strncmp(t->name, "amx", 3) == 0) out.push_back(t);
  if (out.empty()) std::printf("  (no amx variant runs here: build with LOWBIT_EMULATED_ISAS=1 for amx-emu)\n");
  return out;
}

template <typename Expect>
void run_and_check(const KernelTable& kt, lc::LinearArgs a, lc::LinearDriver driver, Expect expect, const char* what) {
  const int64_t total = a.M * a.N * int64_t(element_size(a.y_dtype));
  Guarded<uint8_t> y(total, 0xff, 0x5a);  // 0xff.. is NaN in every output dtype
  a.y = y.get();
  const int64_t P = lc::num_panels(a.N), split = P / 2 + (P > 2);  // odd ranges: a lone panel in one of them
  driver(kt, a, 0, split);
  driver(kt, a, split, P);
  long bad = 0;
  for (int64_t i = 0; i < a.M; ++i)
    for (int64_t n = 0; n < a.N; ++n) {
      const Expected e = expect(i, n);
      const double got = output_at(y.get(), a.y_dtype, i * a.N + n);
      if (!within_bound(got, e.value, e.mag, e.roundings, a.y_dtype) && ++bad <= 3)
        CHECK(false, kt.name, " ", what, " M=", a.M, " N=", a.N, " K=", a.K, " group=", a.group, " dtype=",
              int(a.y_dtype), " y[", i, "][", n, "] = ", got, ", expected ", e.value);
    }
  CHECK(y.guard_intact(), kt.name, " ", what, " wrote past M x N");
}

}  // namespace

TEST(amx_a16w8) {
  for (const KernelTable* kt : amx_variants())
    for (int64_t K : {1, 7, 32, 33, 520, 1100})  // one step, tails, odd K, chunks of 512 and their tails
      for (int64_t N : kNs) {
        const Int8Weights w = random_int8(N, K);
        std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::a16w8_panel_bytes(K)));
        lc::pack_a16w8(w.q.data(), w.scales.data(), N, K, packed.data(), 0, lc::num_panels(N));
        const std::vector<float> bias = random_floats(N);
        for (int64_t M : kMs) {
          if (K == 1100 && M > 48) continue;  // the emulation is slow; 260 rows are covered by the other K
          const std::vector<float> x = random_bf16_floats(M * K);
          const std::vector<uint16_t> xb = to_bf16(x);
          for (ActDType t : {ActDType::bf16, ActDType::f32}) {
            lc::LinearArgs a;
            a.M = M, a.K = K, a.N = N, a.x = x.data(), a.packed = packed.data(), a.y_dtype = t;
            a.x_bf16 = t == ActDType::bf16 ? xb.data() : nullptr;
            a.bias = M % 2 ? bias.data() : nullptr;
            run_and_check(*kt, a, kt->linear_a16w8, [&](int64_t i, int64_t n) {
              return expect_a16w8(x.data(), K, w, a.bias, i, n);
            }, "a16w8");
          }
        }
      }
}

TEST(amx_a16w4) {
  for (const KernelTable* kt : amx_variants())
    // groups of 32 and 64 (several per 512-k chunk, and a last chunk of fewer), 768 (chunks of 512 + 256
    // inside one group), 128 x 4, and 40 / 8 (not a multiple of 32: the parent's driver)
    for (auto [K, group] : {std::pair<int64_t, int64_t>{32, 32}, {640, 64}, {1536, 768}, {512, 128}, {40, 8}})
      for (bool symmetric : {false, true})
        for (int64_t N : kNs) {
          const Int4Weights w = random_int4(N, K, group, symmetric);
          const std::vector<uint8_t> canonical = w.packed();
          std::vector<uint8_t> packed(static_cast<size_t>(lc::num_panels(N) * lc::a16w4_panel_bytes(K, group)));
          lc::pack_a16w4(canonical.data(), w.scales.data(), symmetric ? nullptr : w.zeros.data(), N, K, group,
                         packed.data(), 0, lc::num_panels(N));
          const std::vector<float> bias = random_floats(N);
          for (int64_t M : kMs) {
            if (K >= 1536 && M > 48) continue;
            const std::vector<float> x = random_bf16_floats(M * K);
            const std::vector<uint16_t> xb = to_bf16(x);
            lc::LinearArgs a;
            a.M = M, a.K = K, a.N = N, a.x = x.data(), a.x_bf16 = xb.data(), a.packed = packed.data();
            a.y_dtype = ActDType::bf16, a.group = group, a.bias = M % 2 ? bias.data() : nullptr;
            run_and_check(*kt, a, kt->linear_a16w4, [&](int64_t i, int64_t n) {
              return expect_a16w4(x.data(), K, w, a.bias, i, n);
            }, "a16w4");
          }
        }
}

// int32 sums are exact, so the tile driver must give the parent's outputs bit for bit.
TEST(amx_da8w8_exact_and_equal_to_the_parent) {
  for (const KernelTable* kt : amx_variants()) {
    const KernelTable* parent = lc::find_kernels(std::strcmp(kt->name, "amx") == 0 ? "avx512_bf16" : "avx512_bf16-emu");
    CHECK(parent != nullptr, "the parent of ", kt->name, " runs too");
    if (!parent) continue;
    for (int64_t K : {1, 5, 64, 65, 203, 300})  // K4 % 64: 4, 8, 0, 4, 12, 44
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
          lc::LinearArgs a;
          a.M = M, a.K = K, a.N = N, a.xq = xq.data(), a.x_scale = xs.data(), a.packed = packed.data();
          a.y_dtype = ActDType::f32, a.bias = M % 2 ? bias.data() : nullptr;
          run_and_check(*kt, a, kt->linear_da8w8, [&](int64_t i, int64_t n) {
            return expect_da8w8(xq.data(), xs.data(), K4, w, a.bias, i, n);
          }, "da8w8");
          std::vector<float> y1(size_t(M * N)), y2(size_t(M * N));
          a.y = y1.data();
          kt->linear_da8w8(*kt, a, 0, lc::num_panels(N));
          a.y = y2.data();
          parent->linear_da8w8(*parent, a, 0, lc::num_panels(N));
          CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0, kt->name, " da8w8 M=", M, " N=", N, " K=", K,
                ": differs from ", parent->name);
        }
      }
  }
}
