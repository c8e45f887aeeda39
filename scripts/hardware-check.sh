#!/usr/bin/env bash
# Checks lowbit on the CPU in front of you, with no network: prints the CPU's x86 extensions, builds lowbit
# against the torch already installed, runs the C++ kernel tests and the Python op suite under every kernel
# variant this CPU can run (LOWBIT_CPU_ISA), then a short kernel benchmark. Everything goes under OUTDIR.
#
#   scripts/hardware-check.sh OUTDIR            # python3 from PATH
#   PYTHON=/path/to/python scripts/hardware-check.sh OUTDIR
#
# Needs: a Python with torch (>= 2.10), cmake, ninja, pytest and hypothesis; a C++17 compiler (g++ >= 12).
# It builds in place (python/lowbit/liblowbit_*.so, build/cmake, without the emulated variants of a `make test`
# build: run `make test` again afterwards to get them back) and installs nothing.
# Exit status: 0 when every stage passed. OUTDIR/summary.txt holds the verdicts, the other files the details.
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1" && OUT="$(cd "$1" && pwd)"
PY="${PYTHON:-python3}"
# this check chooses the variants itself: settings of the caller's environment must not leak in
unset LOWBIT_CPU_ISA LOWBIT_EMULATED_ISAS LOWBIT_DEBUG_POISON
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
# the op tests: everything that calls the kernels and needs nothing beyond torch, pytest and hypothesis
OP_TESTS=(tests/test_linear.py tests/test_errors.py tests/test_hostile.py tests/test_fuzz.py tests/test_layouts.py
          tests/test_autograd.py tests/test_quantize.py)
FAILED=0
: > "$OUT/summary.txt"
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
stage() {  # stage NAME LOGFILE command...: runs it, logs everything, records PASS/FAIL
  local name="$1" log="$2"
  shift 2
  if "$@" > "$log" 2>&1; then say "PASS  $name $(grep -Eo '[0-9]+ (passed|skipped)' "$log" | tr '\n' ' ')"
  else say "FAIL  $name (see $log)"; FAILED=1; fi
}

# ---- the machine
{
  grep -m1 'model name' /proc/cpuinfo || true
  echo "logical CPUs: $(nproc)"
  echo "x86 vector extensions: $(grep -m1 '^flags' /proc/cpuinfo | grep -o 'avx[a-z_0-9]*\|amx[a-z_0-9]*\|fma\|f16c' | sort -u | tr '\n' ' ')"
  "$PY" -c 'import torch, platform; print("torch", torch.__version__, "| python", platform.python_version())'
  "${CXX:-g++}" --version | head -1
} > "$OUT/cpu.txt" 2>&1
say "== $(head -1 "$OUT/cpu.txt" | cut -d: -f2 | sed 's/^ *//')"
say "== $(grep -o 'avx512[a-z_0-9]*\|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"

# ---- build (native variants only: the SIMDe-emulated ones are for machines without the instructions)
cd "$ROOT"
stage "build" "$OUT/build.txt" env LOWBIT_EMULATED_ISAS=0 "$PY" setup.py -q build_ext --inplace
VARIANTS="$("$PY" -c 'import lowbit; print(" ".join(lowbit.supported_cpu_isas()))' 2>>"$OUT/build.txt")"
say "== variants this CPU runs: ${VARIANTS:-none (the build failed)}"

# ---- C++ kernel tests (every variant the CPU runs, through the library's registry)
stage "C++ kernel tests" "$OUT/cpp-tests.txt" bash -c "
  cmake -S '$ROOT' -B '$OUT/cpp-tests' -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_BUILD_TESTS=ON &&
  cmake --build '$OUT/cpp-tests' --target lowbit_cpp_tests --parallel &&
  ctest --test-dir '$OUT/cpp-tests' --output-on-failure --timeout 600"

# ---- the op suite under each variant (the variant is fixed per process)
for v in $VARIANTS; do
  stage "op suite under $v" "$OUT/pytest-$v.txt" \
    env LOWBIT_CPU_ISA="$v" LOWBIT_DEBUG_POISON=1 "$PY" -m pytest -q -p no:cacheprovider "${OP_TESTS[@]}"
done

# ---- a short benchmark with the best variant (bf16 activations, cold weights, all threads)
stage "benchmark" "$OUT/bench.txt" "$PY" -m lowbit.bench --shapes 4096x4096 --m 1 8 32 128 --budget 1 \
  --out "$OUT/bench"
grep -E '^lowbit|^ +K x N|^ +[0-9]+ x' "$OUT/bench.txt" | tee -a "$OUT/summary.txt"
# AMX is opt-in until it has passed here (README "AMX"): its benchmark too, where the CPU has it
if [[ " $VARIANTS " == *" amx "* ]]; then
  stage "benchmark (LOWBIT_CPU_ISA=amx)" "$OUT/bench-amx.txt" env LOWBIT_CPU_ISA=amx "$PY" -m lowbit.bench \
    --shapes 4096x4096 --m 1 8 32 128 --budget 1 --out "$OUT/bench-amx"
  grep -E '^lowbit|^ +K x N|^ +[0-9]+ x' "$OUT/bench-amx.txt" | tee -a "$OUT/summary.txt"
fi

if [ "$FAILED" = 0 ]; then say "== all stages passed"; else say "== some stage FAILED"; fi
say "== output in $OUT"
exit "$FAILED"
