"""da8w4 on CPU through torch.ops.lowbit.pack_da8w4 / linear_da8w4 directly: the cases the mode-generic op tests
(tests/cases.py) do not have: the int32 bound's extremes, special rows, the byte layout, argument errors, threads.

Semantics (lowbit.reference.linear_da8w4, from the same per-token quantization as da8w8):
  xq, xs = per-token int8 quantization of x (lowbit.reference.quantize_activation_per_token)
  d_G[i][c] = sum_{k in G} (q[c][k] - z[G][c]) * xq[i][k]          exact int32 (group_size <= kMaxGroupDA8W4)
  y[i][c] = xs[i] * sum_G s[G][c] * float(d_G[i][c]) + bias[c]      fp32, output in x's dtype

Every variant this CPU runs (the emulated ones in LOWBIT_EMULATED_ISAS=1 builds) runs this file in a subprocess
with LOWBIT_CPU_ISA set (test_every_variant), as tests/test_library.py does for the other op tests.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lowbit
from lowbit import formats, reference

from helpers import assert_close_da8w4, da8w4_magnitude, random_int4

ROOT = Path(__file__).resolve().parents[1]
ops = torch.ops.lowbit
MAX_GROUP = (2 ** 31 - 1) // (15 * 127)  # kMaxGroupDA8W4


def reference_da8w4(x, packed, scales, zeros, group_size, bias=None):
    """float64 y (lowbit.reference.linear_da8w4) and the magnitude of the terms the kernels round
    (helpers.da8w4_magnitude: xs * sum_G |s * d| + |bias|)."""
    y = reference.linear_da8w4(x, packed, scales, zeros, group_size, bias, dtype=torch.float64)
    return y, da8w4_magnitude(x, packed, scales, zeros, group_size, bias)


def run_case(shape, k, n, group_size, symmetric, dtype, with_bias, scale=1.0):
    packed, scales, zeros = random_int4(n, k, group_size, symmetric)
    x = (torch.randn(*shape, k) * scale).to(dtype)
    bias = torch.randn(n).to(dtype) if with_bias else None
    p = ops.pack_da8w4(packed, scales, zeros, group_size)
    out = ops.linear_da8w4(x, p, n, group_size, bias)
    assert out.dtype == dtype and out.shape == (*shape, n)
    y64, mag = reference_da8w4(x, packed, scales, zeros, group_size, bias)
    assert_close_da8w4(out, y64, None, mag, k // group_size)
    return out


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("group_size", [8, 32, 64, 128, 256, "K"])
def test_matches_reference(dtype, with_bias, symmetric, group_size):
    k = 512
    g = k if group_size == "K" else group_size
    for shape in [(0,), (1,), (3,), (4,), (5,), (13,), (2, 3), (70,)]:
        for n in (1, 40, 100):
            run_case(shape, k, n, g, symmetric, dtype, with_bias)


def test_llama_like_shapes_decode_and_prefill():
    for m in (1, 8, 32):
        run_case((m,), 4096, 48, 128, False, torch.bfloat16, True)
    run_case((2,), 1024, 40, 1024, True, torch.float32, False)  # per channel


def test_extremes_hit_the_int32_bound():
    """q - z = +-15 against xq = +-127: |d| = 15 * 127 * g, up to the largest group (d = 2^31 - 8)."""
    for k, g in [(2048, 8), (2048, 1024), (MAX_GROUP // 8 * 8, MAX_GROUP // 8 * 8)]:
        n = 17 if k == 2048 else 1
        groups = k // g
        high = ((torch.arange(n)[:, None] + torch.arange(groups)[None]) % 2 == 0)  # [N, G]
        q = torch.where(high, 15, 0).to(torch.uint8).repeat_interleave(g, dim=1)
        zeros = torch.where(high, 0, 15).to(torch.uint8)
        scales = torch.rand(n, groups) * 0.1 / g + 1e-6
        sign = torch.where((torch.arange(3)[:, None] + torch.arange(k)[None] // g) % 3 == 0, -3.0, 3.0)
        x = sign.float()  # every xq = +-127
        packed = formats.pack_int4(q)
        for z in (zeros, None):
            out = ops.linear_da8w4(x, ops.pack_da8w4(packed, scales, z, g), n, g)
            y64, mag = reference_da8w4(x, packed, scales, z, g)
            assert_close_da8w4(out, y64, None, mag, groups)


def test_special_rows():
    """A NaN or Inf row: NaN outputs (that row only); a zero row: the bias; tiny (amax < 2^-120) and huge rows
    (pre-scaled as da8w8's) against the reference."""
    k, n, g = 256, 33, 64
    packed, scales, zeros = random_int4(n, k, g, False)
    p = ops.pack_da8w4(packed, scales, zeros, g)
    x = torch.randn(6, k)
    x[1, 5] = float("nan")
    x[2, 7] = float("inf")
    x[3] = 0
    x[4] *= 1e-39
    x[5] *= 1e36  # amax > FLT_MAX / (256 K): pre-scaled; outputs about 1e37, finite
    bias = torch.randn(n)
    out = ops.linear_da8w4(x, p, n, g, bias)
    assert out[1].isnan().all() and out[2].isnan().all()
    assert not out[[0, 3, 4, 5]].isnan().any()
    assert torch.equal(out[3], bias)
    keep = [0, 3, 4, 5]
    y64, mag = reference_da8w4(x[keep], packed, scales, zeros, g, bias)
    assert_close_da8w4(out[keep], y64, None, mag, k // g)


def test_nonfinite_and_zero_scales_affect_only_their_column():
    k, n, g = 128, 40, 32
    packed, scales, zeros = random_int4(n, k, g, False)
    x = torch.randn(9, k)
    bias = torch.randn(n)
    clean = ops.linear_da8w4(x, ops.pack_da8w4(packed, scales, zeros, g), n, g, bias)
    for value, col in [(float("nan"), 0), (float("inf"), 5), (-float("inf"), n - 1), (0.0, 7)]:
        s = scales.clone()
        s[col] = value
        out = ops.linear_da8w4(x, ops.pack_da8w4(packed, s, zeros, g), n, g, bias)
        others = [c for c in range(n) if c != col]
        assert torch.equal(out[:, others], clean[:, others]), f"scale {value} changed other columns"
        if value == 0.0:
            assert torch.equal(out[:, col], bias[col].expand(9)), "a zero scale must give exactly the bias"
        else:
            assert (~torch.isfinite(out[:, col])).all()


def test_fp16_overflow_gives_inf_like_the_reference():
    k, n, g = 128, 24, 64
    packed, scales, zeros = random_int4(n, k, g, False)
    x = torch.full((2, k), 3e4, dtype=torch.float16)
    out = ops.linear_da8w4(x, ops.pack_da8w4(packed, scales * 100, zeros, g), n, g)
    y64, _ = reference_da8w4(x, packed, scales * 100, zeros, g)
    assert torch.equal(torch.isinf(out), torch.isinf(y64.to(torch.float16))) and torch.isinf(out).any()


def unpack_cpu_layout(p, n, k, g):
    """The CPU packed layout read back: scales [N, G], zeros [N, G], q [N, K] (api.h, da8w4)."""
    groups, gbytes = k // g, 80 + 8 * g
    panels = p.reshape(p.shape[0], groups, gbytes)
    scales = panels[..., :64].contiguous().view(torch.float32)  # [P, G, 16]
    zeros = panels[..., 64:80]  # [P, G, 16]
    rows = panels[..., 80:].reshape(p.shape[0], groups, g // 8, 16, 4)  # [P, G, r, c, j]
    lo, hi = rows & 15, rows >> 4
    q = torch.cat([lo, hi], dim=-1)  # [P, G, r, c, 8]: k = 8r + t
    q = q.permute(0, 3, 1, 2, 4).reshape(p.shape[0] * 16, k)
    s = scales.permute(0, 2, 1).reshape(-1, groups)
    z = zeros.permute(0, 2, 1).reshape(-1, groups)
    return s[:n], z[:n], q[:n], (s[n:], z[n:], q[n:])


@pytest.mark.parametrize("symmetric", [False, True])
def test_packed_layout(symmetric):
    n, k, g = 37, 96, 32
    packed, scales, zeros = random_int4(n, k, g, symmetric)
    p = ops.pack_da8w4(packed, scales, zeros, g)
    assert p.dtype == torch.uint8 and p.shape == (3, k // g * (80 + 8 * g))
    s, z, q, pad = unpack_cpu_layout(p, n, k, g)
    assert torch.equal(s, scales)
    assert torch.equal(z, zeros if zeros is not None else torch.full_like(z, 8))
    assert torch.equal(q, formats.unpack_int4(packed))
    assert all((t == 0).all() for t in pad)  # padding columns: weight 0, scale 0, zero point 0


def test_errors_name_the_argument():
    k, n = 64, 20
    packed, scales, zeros = random_int4(n, k, 32, False)
    p = ops.pack_da8w4(packed, scales, zeros, 32)
    x = torch.randn(2, k)
    for g in (12, 6, 0, -8):
        packed_g, scales_g, zeros_g = random_int4(n, 96, 12, False) if g == 12 else (packed, scales, zeros)
        with pytest.raises(RuntimeError, match="group_size"):
            ops.pack_da8w4(packed_g, scales_g, zeros_g, g)
        with pytest.raises(RuntimeError, match="group_size"):
            ops.linear_da8w4(torch.randn(2, 96 if g == 12 else k), p, n, g)
    with pytest.raises(RuntimeError, match="group_size"):
        ops.linear_da8w4(x, p, n, 128)  # does not divide K = 64
    with pytest.raises(RuntimeError, match="group_size = 16 does not match packed_weight"):
        ops.linear_da8w4(x, p, n, 16)
    with pytest.raises(RuntimeError, match="in_features"):
        ops.linear_da8w4(torch.randn(2, 128), p, n, 32)
    with pytest.raises(RuntimeError, match="out_features"):
        ops.linear_da8w4(x, p, 40, 32)
    with pytest.raises(RuntimeError, match="zeros must be in 0..15"):
        ops.pack_da8w4(packed, scales, torch.full_like(zeros, 16), 32)
    with pytest.raises(RuntimeError, match="scales"):
        ops.pack_da8w4(packed, scales[:, :1].contiguous(), zeros, 32)
    with pytest.raises(RuntimeError, match="bias"):
        ops.linear_da8w4(x, p, n, 32, torch.randn(n, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="x must be"):
        ops.linear_da8w4(x.double(), p, n, 32)
    with pytest.raises(RuntimeError, match="x must be contiguous"):
        ops.linear_da8w4(torch.randn(k, 2).t(), p, n, 32)
    with pytest.raises(RuntimeError, match="packed_weight must be uint8"):
        ops.linear_da8w4(x, p.view(torch.int8), n, 32)
    with pytest.raises(RuntimeError, match="weight must be uint8"):
        ops.pack_da8w4(packed.view(torch.int8), scales, zeros, 32)
    too_large = MAX_GROUP // 8 * 8 + 8
    with pytest.raises(RuntimeError, match=f"group_size <= {MAX_GROUP}"):
        ops.linear_da8w4(torch.randn(1, too_large), p, n, too_large)


def test_threads_and_split_panels():
    """Thread counts split the panels differently (pairs, the decode's groups of four, single tails)."""
    before = torch.get_num_threads()
    try:
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            for m in (1, 3, 17):
                run_case((m,), 256, 16 * 7 + 5, 64, False, torch.float32, True)
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(bool(os.environ.get("LOWBIT_DA8W4_VARIANT_RUN")), reason="already inside a variant run")
@pytest.mark.parametrize("variant", [v for v in lowbit.supported_cpu_isas() if v != lowbit.cpu_isa()])
def test_every_variant(variant):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__],
                       cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "LOWBIT_CPU_ISA": variant, "LOWBIT_DA8W4_VARIANT_RUN": "1"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout


def test_variant_is_the_one_asked_for():
    want = os.environ.get("LOWBIT_CPU_ISA")
    if want:
        assert lowbit.cpu_isa() == want
