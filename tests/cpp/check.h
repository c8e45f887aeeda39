// A minimal test framework for the torch-free kernel tests (no dependency beyond the standard library):
//   TEST(name) { CHECK(a == b, "context ", value, ...); }
// Every test of an executable runs (a failed CHECK records and goes on, so one run shows every mismatch);
// main() returns non-zero if any CHECK failed. `./test_x name-substring` runs only the matching tests.
#pragma once

#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace lowbit_test {

struct Case {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

inline long& failures() {
  static long n = 0;
  return n;
}

template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream s;
  s.precision(9);
  (s << ... << args);
  return s.str();
}

// Only the first few failures of a test are printed: a broken kernel fails thousands of elements at once.
constexpr long kMaxPrinted = 20;

inline void fail(const char* file, int line, const char* expr, const std::string& msg) {
  if (++failures() <= kMaxPrinted) std::fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", file, line, expr, msg.c_str());
}

}  // namespace lowbit_test

#define LOWBIT_CAT2(a, b) a##b
#define LOWBIT_CAT(a, b) LOWBIT_CAT2(a, b)
#define TEST(name)                                                                         \
  static void LOWBIT_CAT(test_, name)();                                                   \
  static const lowbit_test::Register LOWBIT_CAT(register_, name)(#name, LOWBIT_CAT(test_, name)); \
  static void LOWBIT_CAT(test_, name)()

#define CHECK(cond, ...)                                                                      \
  do {                                                                                        \
    if (!(cond)) lowbit_test::fail(__FILE__, __LINE__, #cond, lowbit_test::cat(__VA_ARGS__)); \
  } while (0)

// One main() per test executable: included by exactly one source of it (the test file itself).
#ifdef LOWBIT_TEST_MAIN
int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : "";
  int ran = 0, failed = 0;
  for (const auto& c : lowbit_test::registry()) {
    if (std::strstr(c.name, filter) == nullptr) continue;
    const long before = lowbit_test::failures();
    c.fn();
    ++ran;
    const bool ok = lowbit_test::failures() == before;
    failed += !ok;
    std::printf("%s %s\n", ok ? "[ ok ]" : "[FAIL]", c.name);
  }
  std::printf("%d passed, %d failed\n", ran - failed, failed);
  return failed == 0 && ran > 0 ? 0 : 1;
}
#endif
