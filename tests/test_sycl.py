"""The SYCL kernels (sycl/kernels/*.sycl), run on the CPU as a SYCL device through lowbit_sycl:: ops, against
lowbit.reference: every mode, activation dtype, group size and shape, on every launch path (rows = decode, with
8 or 1 columns per work-item at M = 1; tiled = local-memory tiles), with outputs poisoned with NaN
(LOWBIT_DEBUG_POISON, tests/conftest.py).

Tolerances are those of the native kernels (tests/helpers.py), for the same reasons: fp32 accumulation then one
rounding to the output dtype (a16w8, a16w4); an exact int32 accumulator and a few fp32 roundings in the epilogue
(da8w8, whose activation quantization must match the reference bit for bit).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import cases
import lowbit
from helpers import (assert_close_a16, int4_fold_magnitude, random_int4, random_int4_offsets, random_int8,
                     sycl_cpu_device)
from lowbit import modes, ops, reference

ROOT = Path(__file__).resolve().parents[1]
DTYPES = [torch.bfloat16, torch.float16, torch.float32]
MS = [0, 1, 3, 8, 33, 128]
N = 37  # odd: a partial sub-group, work-group and 32-column tile
# (LOWBIT_SYCL_TILED_MIN_M, LOWBIT_SYCL_DECODE_COLS) forcing each launch path: rows = the decode kernels as the CPU
# device picks them (8 columns per work-item at M = 1), rows-1col = one column per work-item (a GPU's choice)
PATHS = {"rows": ("1000000000", ""), "rows-1col": ("1000000000", "1"), "tiled": ("0", "")}


DEVICE, WHY_NOT = sycl_cpu_device()
needs_sycl = pytest.mark.skipif(DEVICE is None, reason=f"SYCL CPU device unavailable: {WHY_NOT}")


def test_sycl_path_runs_in_ci():
    """CI installs the SYCL runtime (Makefile), so there the SYCL tests must run, never skip."""
    if DEVICE is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the SYCL path is unavailable: {WHY_NOT}")
        pytest.skip(f"SYCL CPU device unavailable: {WHY_NOT}")
    assert DEVICE


@pytest.fixture
def routed():
    with lowbit.sycl.route_cpu():
        yield


@pytest.fixture(params=list(PATHS))
def path(request, monkeypatch):
    tiled_min_m, decode_cols = PATHS[request.param]
    monkeypatch.setenv("LOWBIT_SYCL_TILED_MIN_M", tiled_min_m)
    monkeypatch.setenv("LOWBIT_SYCL_DECODE_COLS", decode_cols)
    return request.param


def _bias(n, dtype, with_bias):
    return torch.randn(n, dtype=dtype) if with_bias else None


def _sycl_cases():
    """Every mode x (K, group_size) x symmetric: int8 with a partial last 4-byte word (K = 203); int4 with the usual
    group sizes, per channel, and groups that are not a multiple of 8 (partial words) where the mode takes them."""
    out = []
    for mode in cases.MODES:
        if mode in cases.INT8_MODES:
            out += [pytest.param(mode, k, None, True, id=f"{mode}-k{k}") for k in (64, 203)]
            continue
        for k, g in [(512, 32), (512, 128), (768, 256), (512, None), (60, 6), (40, 10), (36, 2), (200, None)]:
            if modes.get(mode).group_size_error(k, g or k) is None:
                out += [pytest.param(mode, k, g, sym, id=f"{mode}-k{k}-g{g or 'K'}-{'sym' if sym else 'asym'}")
                        for sym in (False, True)]
    return out


@needs_sycl
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("mode, k, group_size, symmetric", _sycl_cases())
def test_linear(routed, path, mode, k, group_size, symmetric, m, dtype):
    g = group_size or (k if mode in cases.INT4_MODES else None)
    w = cases.random_weights(mode, N, k, g, symmetric)
    packed = cases.pack(mode, w, g)
    assert packed.shape == lowbit.sycl.packed_shape(mode, N, k, g)
    x, bias = torch.randn(m, k, dtype=dtype), _bias(N, dtype, m % 2 == 1)
    out = cases.linear(mode, x, packed, N, g, bias)
    assert out.shape == (m, N) and out.dtype == dtype
    cases.check(mode, out, x, w, g, bias)


@needs_sycl
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("k, group_size", [(512, 32), (512, 128), (512, None), (60, 6), (36, 2)])
def test_a16w4_float_offsets(routed, path, m, k, group_size, dtype):
    """w = scale * q + offset: the zero-point rows hold the offsets, one more row marks the form (pack.sycl)."""
    g = group_size or k
    packed_q, s, o = random_int4_offsets(N, k, g)
    packed = ops.pack_a16w4(packed_q, s, o, g)
    shape = lowbit.sycl.packed_shape("a16w4", N, k, g)
    assert packed.shape == (shape[0], shape[1] + 1, *shape[2:])
    x, bias = torch.randn(m, k, dtype=dtype), _bias(N, dtype, m % 2 == 0)
    out = ops.linear_a16w4(x, packed, N, g, bias)
    assert out.shape == (m, N) and out.dtype == dtype
    ref = reference.linear_a16w4(x, packed_q, s, o, g, bias, dtype=torch.float64)
    assert_close_a16(out, ref, x, int4_fold_magnitude(packed_q, s, o, g), bias)


@needs_sycl
@pytest.mark.parametrize("m", [1, 3])
def test_da8w8_accumulator_is_exact_past_2_24(routed, path, m):
    """Partial sums far above 2^24 that cancel to a small result: column j's weights are -127 for its first h_j
    elements and +127 after, against x_q = 127 everywhere, so acc = 16129 (K - 2 h_j) while the running sum passes
    3e7. An fp32 running sum would round there (odd products, spacing 2 or 4); the decode kernels' fp32 chains
    (exact for kExactWords words, then moved to int32) and the tiled int32 path must give acc exactly."""
    k, n = 4100, 70
    h = 2000 + torch.arange(n) * 3
    q = torch.where(torch.arange(k)[None, :] < h[:, None], -127, 127).to(torch.int8)
    s = torch.rand(n) + 0.5
    x = torch.full((m, k), 3.0)
    out = ops.linear_da8w8(x, ops.pack_da8w8(q, s), n)
    xq, xs = reference.quantize_activation_per_token(x)
    acc = xq.double() @ q.double().T  # exact in float64
    assert (xq == 127).all() and acc.abs().max() < 2 ** 24
    torch.testing.assert_close(out.double(), acc * xs.double()[:, None] * s.double(), rtol=2 ** -22, atol=0)


@needs_sycl
def test_da8w8_quantization_is_bit_exact(routed, path):
    """One-hot weight rows make output n = x_q[:, n] * x_scale: ties, a zero row, and a row with a NaN."""
    k = 40
    q, s = torch.eye(k, dtype=torch.int8), torch.ones(k)
    x = torch.randn(9, k) * 3
    x[1] = 0.0
    x[2, :4] = torch.tensor([0.5, -0.5, 1.5, 2.5]) / 127 * x[2].abs().max()
    x[5, 7] = float("nan")
    out = ops.linear_da8w8(x, ops.pack_da8w8(q, s), k)
    xq, xs = reference.quantize_activation_per_token(x)
    assert out[5].isnan().all()
    keep = torch.arange(9) != 5
    torch.testing.assert_close(out[keep], (xq.float() * xs[:, None])[keep], rtol=2 ** -23, atol=0)


@needs_sycl
@pytest.mark.parametrize("mode", cases.MODES)
def test_quant_linear_follows_the_switch(mode):
    """QuantLinear repacks when the route changes, and the SYCL and native kernels agree to the tolerance."""
    torch.manual_seed(1)
    lin = nn.Linear(96, 40).to(torch.bfloat16)
    layer = lowbit.QuantLinear.from_linear(lin, mode=mode, group_size=32)
    x = torch.randn(5, 96, dtype=torch.bfloat16)
    native = layer(x)
    assert layer.packed_weight.dim() == 2
    with lowbit.sycl.route_cpu():
        routed_out = layer(x)
        assert layer.packed_weight.shape == lowbit.sycl.packed_shape(mode, 40, 96, layer.group_size)
        fresh = lowbit.QuantLinear(96, 40, mode=mode, group_size=32, dtype=torch.bfloat16)
        fresh.load_state_dict(layer.state_dict())  # the canonical format, repacked for SYCL on load
        torch.testing.assert_close(fresh(x), routed_out, rtol=0, atol=0)
    assert layer(x).equal(native) and layer.packed_weight.dim() == 2
    torch.testing.assert_close(routed_out.float(), native.float(), rtol=2 ** -7, atol=2e-2)


@needs_sycl
def test_layout_mismatch_is_a_clear_error():
    q, s = random_int8(N, 64)
    cpu_packed = ops.pack_a16w8(q, s)
    x = torch.randn(2, 64)
    with lowbit.sycl.route_cpu():
        sycl_packed = ops.pack_a16w8(q, s)
        with pytest.raises(ValueError, match="packed for another shape"):
            ops.linear_a16w8(x, cpu_packed, N)
        with pytest.raises(RuntimeError, match=r"not in the SYCL layout"):
            torch.ops.lowbit_sycl.linear_a16w8(x, cpu_packed, N, None)
        with pytest.raises(RuntimeError, match="does not match the in_features"):
            torch.ops.lowbit_sycl.linear_a16w8(torch.randn(2, 68), sycl_packed, N, None)
        with pytest.raises(RuntimeError, match="zeros must be in 0..15"):
            wq, s4, z = random_int4(N, 64, 32, False)
            torch.ops.lowbit_sycl.pack_a16w4(wq, s4, z + 16, 32)
    with pytest.raises(ValueError, match="packed for another shape"):
        ops.linear_a16w8(x, sycl_packed, N)


@needs_sycl
def test_fake_kernels_match_the_sycl_ops(routed):
    from torch._subclasses.fake_tensor import FakeTensorMode
    wq, s, z = random_int4(N, 64, 32, False)
    real = torch.ops.lowbit_sycl.pack_a16w4(wq, s, z, 32)
    with FakeTensorMode() as mode:
        fake = torch.ops.lowbit_sycl.pack_a16w4(mode.from_tensor(wq), mode.from_tensor(s), mode.from_tensor(z), 32)
        y = torch.ops.lowbit_sycl.linear_a16w4(mode.from_tensor(torch.randn(3, 64)), fake, N, 32, None)
    assert fake.shape == real.shape and y.shape == (3, N)


@needs_sycl
def test_build_failure_is_a_python_error_with_the_compiler_log(tmp_path):
    """A kernel source that does not compile (here: a header forced in by an extra build option) reaches Python
    as a RuntimeError naming the source and carrying the compiler's diagnostics."""
    broken = tmp_path / "broken.h"
    broken.write_text("#error deliberately broken for lowbit's test\n")
    code = ("import torch, lowbit; from lowbit import ops\n"
            "q = torch.zeros(4, 8, dtype=torch.int8); s = torch.ones(4)\n"
            "with lowbit.sycl.route_cpu():\n"
            "    try:\n"
            "        ops.pack_a16w8(q, s)\n"
            "    except RuntimeError as e:\n"
            "        print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "LOWBIT_SYCL_BUILD_OPTIONS": f"-include {broken}"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "building the SYCL kernels of pack.sycl" in r.stdout, r.stdout[-2000:]
    assert "error: deliberately broken for lowbit's test" in r.stdout, r.stdout[-2000:]


def test_without_a_sycl_runtime_import_is_silent_and_cpu_works():
    """A CPU-only install: no SYCL runtime can be loaded (simulated by failing every libsycl load)."""
    code = ("import ctypes, warnings\n"
            "real = ctypes.CDLL\n"
            "def fake(name, *a, **k):\n"
            "    if 'libsycl' in str(name): raise OSError('libsycl.so.8: cannot open shared object file')\n"
            "    return real(name, *a, **k)\n"
            "ctypes.CDLL = fake\n"
            "warnings.simplefilter('error')\n"
            "import torch, lowbit\n"
            "assert not lowbit.sycl.available() and 'pip install lowbit[sycl]' in lowbit.sycl.unavailable_reason()\n"
            "q = torch.zeros(4, 8, dtype=torch.int8)\n"
            "print(lowbit.ops.linear_a16w8(torch.ones(1, 8), lowbit.ops.pack_a16w8(q, torch.ones(4)), 4).sum().item())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "0.0" and r.stderr == "", r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "LOWBIT_SYCL_ON_CPU": "1"})
    assert r.returncode != 0 and "LOWBIT_SYCL_ON_CPU=1 but the SYCL backend is unavailable" in r.stderr


@needs_sycl
def test_opencl_loader_is_pointed_at_the_installed_runtime():
    """No environment variable set by hand: lowbit sets OCL_ICD_FILENAMES (when unset) to the wheel's runtime."""
    env = {k: v for k, v in os.environ.items() if k != "OCL_ICD_FILENAMES"}
    code = "import os, lowbit; print(lowbit.sycl.cpu_device()); print(os.environ['OCL_ICD_FILENAMES'])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    name, icd = r.stdout.split("\n")[:2]
    assert name and icd == str(Path(sys.prefix) / "lib" / "libintelocl.so")


@needs_sycl
def test_sycl_library_uses_only_the_stable_abi():
    out = subprocess.run(["nm", "-D", "--undefined-only", "-C", str(lowbit.sycl.LIBRARY)], check=True,
                         capture_output=True, text=True).stdout
    symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
    unstable = [s for s in symbols if re.match(r"(at|c10|torch)::", s)]
    assert not unstable, f"unstable torch symbols: {unstable[:10]}"
    assert not [s for s in symbols if s.startswith("Py") or s.startswith("_Py")]


@needs_sycl
def test_op_suite_through_the_sycl_path():
    """tests/test_linear.py, the native op suite, run again with every op routed to the SYCL kernels."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_linear.py"],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "LOWBIT_SYCL_ON_CPU": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout


@needs_sycl
@pytest.mark.parametrize("mode", cases.MODES)
def test_opcheck_lowbit_sycl_ops(mode):
    """Schemas, fake kernels and dispatcher registration of the lowbit_sycl ops agree (torch.library.opcheck)."""
    k, n = 64, 20
    g = 32 if mode in cases.INT4_MODES else None
    x = torch.randn(3, k, dtype=torch.bfloat16)
    bias = torch.randn(n, dtype=torch.bfloat16)
    args = modes.get(mode).weights.pack_args(cases.random_weights(mode, n, k, g), g)
    torch.library.opcheck(getattr(torch.ops.lowbit_sycl, f"pack_{mode}"), args)
    packed = getattr(torch.ops.lowbit_sycl, f"pack_{mode}")(*args)
    extra = (g,) if g else ()
    torch.library.opcheck(getattr(torch.ops.lowbit_sycl, f"linear_{mode}"), (x, packed, n, *extra, bias))


@needs_sycl
@pytest.mark.parametrize("mode", cases.MODES)
def test_empty_k_is_refused_not_left_unwritten(mode):
    """x [3, 0] with a packing shaped for K = 0 (issue 11, item 1): the native op raises, and so must the SYCL op
    (it used to return a [3, N] tensor it never wrote); the wrappers raise ValueError before reaching it."""
    op = getattr(torch.ops.lowbit_sycl, f"linear_{mode}")
    x = torch.randn(3, 0)
    g = 32 if mode in cases.INT4_MODES else None
    packed = torch.zeros(2, lowbit.sycl.packed_shape(mode, 70, 0, g or 2)[1], 64, 4, dtype=torch.uint8)
    with pytest.raises(RuntimeError, match="K must be positive"):
        op(x, packed, 70, *((g,) if g else ()), None)
    with lowbit.sycl.route_cpu(), pytest.raises(ValueError, match="K must be positive"):
        ops.linear(mode, x, packed, 70, g)


@needs_sycl
def test_sizes_past_32_bits_are_refused():
    """The SYCL kernels index with 32-bit ints (issue 11, item 4): out_features = 2^31 + 16 used to turn negative
    and leave the output unwritten, and a bf16 x with M * K = 2^31 + 65536 made the a16w8 (and a16w4) activation
    prepass convert nothing. Both are errors now, raised before anything is allocated or launched (x is allocated
    but never touched, so its 4 GiB stay virtual)."""
    op = torch.ops.lowbit_sycl
    q, s = random_int8(16, 8)
    with pytest.raises(RuntimeError, match="out_features = 2147483664 is too large for the SYCL kernels"):
        op.linear_a16w8(torch.randn(2, 8), op.pack_a16w8(q, s), 2 ** 31 + 16, None)
    k = 65536
    x = torch.empty(2 ** 31 // k + 1, k, dtype=torch.bfloat16)  # M * K = 2^31 + 65536
    q8, s8 = torch.zeros(16, k, dtype=torch.int8), torch.ones(16)
    q4, s4 = torch.zeros(16, k // 2, dtype=torch.uint8), torch.ones(16, k // 128)
    for call in (lambda: op.linear_a16w8(x, op.pack_a16w8(q8, s8), 16, None),
                 lambda: op.linear_da8w8(x, op.pack_da8w8(q8, s8), 16, None),
                 lambda: op.linear_a16w4(x, op.pack_a16w4(q4, s4, None, 128), 16, 128, None)):
        with pytest.raises(RuntimeError, match=r"x.numel\(\) = 2147549184 is too large for the SYCL kernels"):
            call()
    x_small_rows = torch.empty(2 ** 31 // 16 // 64 + 1, 64, dtype=torch.bfloat16)  # M * N past 2^31 with N = 2^10
    big_n = torch.ops.lowbit_sycl.pack_a16w8(torch.zeros(1024 * 16, 64, dtype=torch.int8), torch.ones(1024 * 16))
    with pytest.raises(RuntimeError, match=r"the output's numel .* is too large"):
        torch.ops.lowbit_sycl.linear_a16w8(x_small_rows, big_n, 1024 * 16, None)


@needs_sycl
def test_lowbit_sycl_ops_refuse_mixed_devices_and_name_the_wrong_argument():
    """Issue 11, items 2 and 13 on the SYCL ops: one meta tensor among CPU ones is refused (the fake kernel ran and
    returned uninitialized memory), and a mismatched group size is blamed on group_size, not on x."""
    op = torch.ops.lowbit_sycl
    q4, s4, z4 = random_int4(N, 64, 32, False)
    p4 = op.pack_a16w4(q4, s4, z4, 32)
    x = torch.randn(3, 64)
    with pytest.raises(RuntimeError, match="all tensors must be on one device, got x on cpu, packed_weight on meta"):
        op.linear_a16w4(x, p4.to("meta"), N, 32, None)
    with pytest.raises(RuntimeError, match="bias on meta"):
        op.linear_a16w4(x, p4, N, 32, torch.randn(N, device="meta"))
    with pytest.raises(RuntimeError, match="zeros on meta"):
        op.pack_a16w4(q4, s4, z4.to("meta"), 32)
    with pytest.raises(RuntimeError, match="group_size = 64 does not match packed_weight, whose size is that of "
                                           "group_size = 32 for K = 64"):
        op.linear_a16w4(x, p4, N, 64, None)


@needs_sycl
def test_lowbit_sycl_fake_kernels_refuse_what_the_ops_refuse():
    """Issue 11, item 15 on the SYCL ops: the same message from the fake kernel as from the C++ op."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    op = torch.ops.lowbit_sycl
    q4, s4, z4 = random_int4(N, 64, 32, False)
    q8, s8 = random_int8(N, 64)
    p4, p8 = op.pack_a16w4(q4, s4, z4, 32), op.pack_a16w8(q8, s8)
    x = torch.randn(3, 64)
    cases = [(op.linear_a16w4, (x, p4, N, 3, None)), (op.linear_a16w4, (x, p4, N, 64, None)),
             (op.linear_a16w8, (x.long(), p8, N, None)), (op.linear_a16w8, (x, ops.pack_a16w8(q8, s8), N, None)),
             (op.linear_a16w8, (torch.randn(3, 68), p8, N, None)), (op.linear_da8w8, (x, p8, N + 64, None)),
             (op.linear_a16w8, (x, p8, 2 ** 31 + 16, None)), (op.linear_a16w8, (x[:, :0], p8[:, :1], N, None)),
             (op.pack_a16w4, (q4, s4, z4, 0)), (op.pack_a16w8, (q8.float(), s8))]
    for fn, args in cases:
        with pytest.raises(RuntimeError) as eager:
            fn(*args)
        with FakeTensorMode() as mode:
            with pytest.raises(RuntimeError) as fake:
                fn(*[mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args])
        e, f = str(eager.value).splitlines()[0], str(fake.value).splitlines()[0]
        assert f[f.index("lowbit: "):] == e[e.index("lowbit: "):]
