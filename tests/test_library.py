"""The promises of the native library: stable ABI only, one wheel for every Python, variant selection."""

import json
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
    variants = lowbit.supported_cpu_isas()
    assert lowbit.cpu_isa() in variants
    assert variants[-1] == "generic"
    # native ones best first, then the emulated twins (never chosen by default), then generic
    native = [v for v in variants if not v.endswith("-emu")]
    assert variants[:len(native) - 1] == native[:-1]
    assert lowbit.cpu_isa() == variants[0] or os.environ.get("LOWBIT_CPU_ISA")
    assert not lowbit.cpu_isa().endswith("-emu") or os.environ.get("LOWBIT_CPU_ISA")


def test_emulated_variants_exist_exactly_in_test_builds():
    """make test builds the SIMDe twins of the AVX-512 variants (LOWBIT_EMULATED_ISAS=1), so their logic runs on
    any x86-64 machine; `make build` and wheels never contain them."""
    emulated = [v for v in lowbit.supported_cpu_isas() if v.endswith("-emu")]
    if os.environ.get("LOWBIT_EMULATED_ISAS") == "1":
        assert set(emulated) >= {"avx512_vnni-emu", "avx512_bf16-emu", "amx-emu"}, emulated
    r = _run_python("import lowbit; print(lowbit.cpu_isa())", LOWBIT_CPU_ISA="avx512_bf16-emu")
    if emulated:
        assert r.returncode == 0 and r.stdout.strip() == "avx512_bf16-emu", r.stderr[-2000:]
    else:
        assert r.returncode != 0 and "not a known variant" in r.stderr


def _run_python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env})


def test_unknown_or_unsupported_variant_request_is_an_error():
    r = _run_python("import lowbit", LOWBIT_CPU_ISA="avx9000")
    assert r.returncode != 0 and "not a known variant" in r.stderr
    r = _run_python("import lowbit; print(lowbit.cpu_isa())", LOWBIT_CPU_ISA="generic")
    assert r.returncode == 0 and r.stdout.strip() == "generic"


# Every test file that calls the kernels (the Python-level plumbing - compile/export, threads, the main job - is
# the same for every variant and runs once, under the default one).
OP_SUITE = ["tests/test_linear.py", "tests/test_errors.py", "tests/test_serialization.py", "tests/test_hostile.py",
            "tests/test_fuzz.py", "tests/test_layouts.py", "tests/test_autograd.py", "tests/test_quantize.py"]


@pytest.mark.parametrize("variant", [v for v in lowbit.supported_cpu_isas() if v != lowbit.cpu_isa()])
def test_op_suite_under_every_other_variant(variant):
    """The variant is fixed per process, so the op tests run again in a child forced to each other variant this
    machine runs, native or emulated (LOWBIT_EMULATED_ISAS builds): a new variant needs no test edits."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *OP_SUITE],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "LOWBIT_CPU_ISA": variant})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built once for the tests below."""
    if not (ROOT / "setup.py").exists():
        pytest.skip("needs the source tree")
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wheels = list(out.glob("lowbit-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_is_not_tied_to_a_python_version(wheel):
    tag = wheel.name.split("-", 2)[2]
    assert tag.startswith("py3-none-linux_"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert "lowbit/liblowbit_cpu.so" in names and not any(".cpython-" in n for n in names)


def test_wheel_holds_no_emulated_variant(wheel):
    """Even when built from an environment with LOWBIT_EMULATED_ISAS=1 (make test), a wheel is native only."""
    library = zipfile.ZipFile(wheel).read("lowbit/liblowbit_cpu.so")
    assert b"avx512_bf16" in library and b"avx512_bf16-emu" not in library and b"avx512_vnni-emu" not in library
    assert b"amx" in library and b"amx-emu" not in library


def _version(text):
    return tuple(int(p) for p in text.split(".")[:3])


def test_wheel_libraries_use_only_the_stable_abi(wheel, tmp_path):
    """What ships, not what the editable build left in the tree: every native library in the wheel has no
    unstable torch or Python C-API symbol (nm), and torch-abi-audit agrees, down to the oldest torch it loads on."""
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path)
    libraries = sorted((tmp_path / "lowbit").glob("*.so"))
    assert tmp_path / "lowbit" / "liblowbit_cpu.so" in libraries
    for lib in libraries:
        symbols = _undefined_symbols(lib)
        unstable = [s for s in symbols if re.match(r"(at|c10|torch)::", s) or s.startswith("_ZN")]
        assert not unstable, f"{lib.name}: unstable torch symbols: {unstable[:10]}"
        assert not [s for s in symbols if s.startswith(("Py", "_Py"))], f"{lib.name}: Python C-API symbols"

    audit = Path(sys.executable).parent / "torch-abi-audit"  # from PyPI; the Makefile installs it
    r = subprocess.run([str(audit), "--json", str(tmp_path / "lowbit")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert report["error"] is None and not report["extensions"], report
    audited = {Path(lib["path"]).name: lib for lib in report["bundled_libs"]}
    assert set(audited) == {lib.name for lib in libraries}, audited.keys()
    for name, lib in audited.items():
        assert lib["error"] is None, (name, lib["error"])
        assert lib["torch"]["uses_torch"] and lib["torch"]["stable"], (name, lib["torch"])
        assert lib["torch"]["unstable_symbols"] == [] and lib["torch"]["unknown_shim_symbols"] == [], name
        assert not lib["cpython"]["violations"], (name, lib["cpython"])
    # the promise of pyproject.toml (torch>=2.10) for the CPU library; the SYCL one may need a newer torch
    # (Stream::nativeHandle, 2.13): on an older one it does not load and lowbit.sycl.available() is False
    assert _version(audited["liblowbit_cpu.so"]["torch"]["min_torch_version"]) <= (2, 10, 0)
