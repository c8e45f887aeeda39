"""The C++ unit tests of the torch-free kernels (tests/cpp): configured, built and run with ctest, once plain
and once under AddressSanitizer + UndefinedBehaviorSanitizer (CMake options LOWBIT_BUILD_TESTS, LOWBIT_SANITIZE).
Each build has its own directory under build/ (kept between runs, so a rerun only rebuilds what changed)."""

import fcntl
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lowbit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's cmake and ninja (Makefile installs them)


_EMULATED = any(v.endswith("-emu") for v in lowbit.supported_cpu_isas())


def _tool(name):
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found (make venv installs it)")
    return str(path)


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
    return r.stdout


@pytest.mark.parametrize("sanitize", [False, True], ids=["plain", "asan-ubsan"])
def test_cpp_kernel_tests_pass(sanitize):
    build = ROOT / "build" / ("cpp-tests-sanitize" if sanitize else "cpp-tests")
    build.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           # any report fails the run; leaks too
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    with open(build / ".lock", "w") as lock:  # two test sessions on one checkout must not build one dir at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        _run([_tool("cmake"), "-S", ROOT, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
              "-DLOWBIT_BUILD_TESTS=ON", f"-DLOWBIT_SANITIZE={'ON' if sanitize else 'OFF'}",
              # the emulated variants too when the library under test has them (make test builds them)
              f"-DLOWBIT_EMULATED_ISAS={'ON' if _EMULATED else 'OFF'}", f"-DPython3_EXECUTABLE={sys.executable}"],
             env=env)
        _run([_tool("cmake"), "--build", build, "--target", "lowbit_cpp_tests", "--parallel", "2"], env=env)
        out = _run([_tool("ctest"), "--test-dir", build, "--output-on-failure", "--timeout", "300"], env=env)
        assert re.search(r"100% tests passed(, 0 tests failed)? out of [1-9]", out), out
        # the C++ tests took every variant this CPU runs, the same list the loaded library reports
        listed = _run([build / "tests" / "cpp" / "test_convert"], env=env)
    assert re.search(r"^variants tested: (.*)$", listed, re.M).group(1).split() == lowbit.supported_cpu_isas()
