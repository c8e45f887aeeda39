"""The promises of the native library: stable ABI only, one wheel for every Python, variant selection."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import lowbit
from lowbit._library import CPU_LIBRARY

ROOT = Path(__file__).resolve().parents[1]


def _undefined_symbols(path):
    out = subprocess.run(["nm", "-D", "--undefined-only", "-C", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def test_cpu_library_uses_only_the_stable_abi():
    symbols = _undefined_symbols(CPU_LIBRARY)
    assert any(s.startswith("aoti_torch_") or s.startswith("torch_") for s in symbols)
    unstable = [s for s in symbols if re.match(r"(at|c10|torch)::", s) or s.startswith("_ZN")]
    assert not unstable, f"unstable torch symbols: {unstable[:10]}"
    python = [s for s in symbols if s.startswith("Py") or s.startswith("_Py")]
    assert not python, f"Python C-API symbols: {python[:10]}"


def test_variant_is_reported():
    assert lowbit.cpu_isa() in lowbit.supported_cpu_isas()
    assert lowbit.supported_cpu_isas()[-1] == "generic"
    assert lowbit.cpu_isa() == lowbit.supported_cpu_isas()[0] or os.environ.get("LOWBIT_CPU_ISA")


def _run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env})


def test_unknown_or_unsupported_variant_request_is_an_error():
    r = _run_python("import lowbit", LOWBIT_CPU_ISA="avx9000")
    assert r.returncode != 0 and "not a known variant" in r.stderr
    r = _run_python("import lowbit; print(lowbit.cpu_isa())", LOWBIT_CPU_ISA="generic")
    assert r.returncode == 0 and r.stdout.strip() == "generic"


@pytest.mark.parametrize("variant", [v for v in lowbit.supported_cpu_isas() if v != lowbit.cpu_isa()])
def test_op_suite_under_every_other_variant(variant):
    """The variant is fixed per process, so the op tests run again in a child forced to each other variant."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        "tests/test_linear.py", "tests/test_errors.py", "tests/test_serialization.py"],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "LOWBIT_CPU_ISA": variant})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout


@pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source tree")
def test_wheel_is_not_tied_to_a_python_version(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wheels = list(tmp_path.glob("lowbit-*.whl"))
    assert len(wheels) == 1
    tag = wheels[0].name.split("-", 2)[2]
    assert tag.startswith("py3-none-linux_"), wheels[0].name
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "lowbit/liblowbit_cpu.so" in names and not any(".cpython-" in n for n in names)
