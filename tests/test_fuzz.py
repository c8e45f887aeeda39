"""Property-based fuzzing of every linear op against lowbit.reference (hypothesis).

Hypothesis draws the shape (M, K, N, group size), the mode, dtype, bias and symmetry, and the content: activation
magnitudes over six decades, all-zero rows, zero-scale columns, int8 weights at -128, zero points at 0 or 15, and
a16w4's float offsets.
The error bounds are those of tests/helpers.py, plus half a subnormal step of the output dtype. The budget is small by default (a fixed, derandomized run in
CI); for a longer, random one:

    LOWBIT_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz.py
"""

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import U32, UNIT_ROUNDOFF, da8w4_magnitude, da8w8_magnitude, int4_fold_magnitude
import lowbit
from lowbit import formats, modes, ops, reference

EXAMPLES = int(os.environ.get("LOWBIT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 60, derandomize=not EXAMPLES, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow])

SCALES = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]  # activation magnitudes
# Half the spacing of each output dtype's subnormals: below its normal range a rounding to the dtype is off by up
# to this much in absolute terms, not by a relative unit roundoff (small K and small x reach fp16's, < 2^-14).
HALF_SUBNORMAL_STEP = {torch.float16: 2.0 ** -25, torch.bfloat16: 2.0 ** -134, torch.float32: 2.0 ** -150}


def _assert_within(out, ref64, fp32_error_bound):
    """The bounds of tests/helpers.py (fp32 error of the kernels' arithmetic, then one rounding to the output
    dtype) plus the subnormal allowance above, which helpers.py's shapes never need."""
    tol = UNIT_ROUNDOFF[out.dtype] * ref64.abs() + fp32_error_bound + HALF_SUBNORMAL_STEP[out.dtype]
    err = (out.double() - ref64).abs()
    bad = ~(err <= tol)  # NaN counts as bad
    assert not bad.any(), (f"{int(bad.sum())} of {out.numel()} elements off; worst excess "
                           f"{(err - tol).max().item():.3e}")


def _a16_bound(x, w64, bias):
    """helpers.assert_close_a16: 4 sqrt(K) u32 sum|x w| (+ |bias|) for the fp32 accumulation."""
    absdot = x.double().abs() @ w64.abs().T
    if bias is not None:
        absdot = absdot + bias.double().abs()
    return 4 * x.shape[-1] ** 0.5 * U32 * absdot


@st.composite
def cases(draw):
    mode = draw(st.sampled_from(lowbit.MODES))
    dtype = draw(st.sampled_from([torch.bfloat16, torch.float16, torch.float32]))
    m = draw(st.integers(0, 70))
    n = draw(st.integers(1, 40))
    if modes.get(mode).grouped:
        group = draw(st.sampled_from([g for g in (2, 8, 32, 64, 128) if g % modes.get(mode).group_multiple == 0]))
        k = group * draw(st.integers(1, max(1, 600 // group)))
    else:
        group = None
        k = draw(st.integers(1, 600))
    return dict(mode=mode, dtype=dtype, m=m, n=n, k=k, group=group, bias=draw(st.booleans()),
                symmetric=draw(st.booleans()), scale=draw(st.sampled_from(SCALES)),
                zero_rows=draw(st.booleans()), zero_scale_cols=draw(st.booleans()),
                extreme_weights=draw(st.booleans()), offsets=draw(st.booleans()),
                seed=draw(st.integers(0, 2 ** 31 - 1)))


@FUZZ
@given(cases())
def test_ops_match_reference(c):
    g = torch.Generator().manual_seed(c["seed"])
    m, n, k, dtype = c["m"], c["n"], c["k"], c["dtype"]
    if dtype == torch.float16 and c["scale"] == 100.0:
        c["scale"] = 10.0  # y = 100 * sum over up to 600 terms of |w| <= 2.5 could pass fp16's 65504
    x = (torch.randn(m, k, generator=g) * c["scale"]).to(dtype)
    if c["zero_rows"] and m:
        x[torch.randint(0, m, (max(1, m // 4),), generator=g)] = 0
    bias = torch.randn(n, generator=g).to(dtype) if c["bias"] else None
    zero_cols = torch.randint(0, n, (max(1, n // 5),), generator=g) if c["zero_scale_cols"] else None

    mode = modes.get(c["mode"])
    if mode.grouped:
        group = c["group"]
        q = torch.randint(0, 16, (n, k), generator=g, dtype=torch.uint8)
        scales = torch.rand(n, k // group, generator=g) * 0.1 + 0.01
        zeros = None if c["symmetric"] else torch.randint(0, 16, (n, k // group), generator=g, dtype=torch.uint8)
        if c["extreme_weights"] and zeros is not None:
            zeros[:, ::2] = 0
            zeros[:, 1::2] = 15
        if c["offsets"] and mode.float_offsets and zeros is not None:  # w = scale * q + offset
            zeros = -scales * zeros.float() + (torch.rand(n, k // group, generator=g) - 0.5) * scales
        if zero_cols is not None:
            scales[zero_cols] = 0
        packed_q = formats.pack_int4(q)
        key = "weight_offset" if zeros is not None and zeros.is_floating_point() else "weight_zero"
        w = {"weight": packed_q, "weight_scale": scales, key: zeros}
        out = ops.linear(mode, x, ops.pack(mode, packed_q, scales, zeros, group), n, group, bias)
        ref = mode.reference(x, w, group, bias, torch.float64)
        assert out.shape == (m, n) and out.dtype == dtype
        if mode.dynamic_activations:  # helpers.assert_close_da8w4: exact int32 group sums, K/g + 4 fp32 roundings
            _assert_within(out, ref, (k // group + 4) * U32 * da8w4_magnitude(x, packed_q, scales, zeros, group, bias))
        else:
            _assert_within(out, ref, _a16_bound(x, int4_fold_magnitude(packed_q, scales, zeros, group), bias))
        return

    q = torch.randint(-128, 128, (n, k), generator=g, dtype=torch.int8)
    if c["extreme_weights"]:
        q[:, ::3] = -128
    scales = torch.rand(n, generator=g) * 0.02 + 0.001
    if zero_cols is not None:
        scales[zero_cols] = 0
    out = ops.linear(mode, x, ops.pack(mode, q, scales), n, None, bias)
    ref = mode.reference(x, {"weight": q, "weight_scale": scales}, None, bias, torch.float64)
    assert out.shape == (m, n) and out.dtype == dtype
    if not mode.dynamic_activations:
        _assert_within(out, ref, _a16_bound(x, reference.dequantize_int8(q, scales), bias))
    else:
        _assert_within(out, ref, 4 * U32 * da8w8_magnitude(x, q, scales, bias))  # helpers.assert_close_da8w8: exact int32, 4 fp32 roundings


@FUZZ
@given(st.integers(1, 300), st.integers(0, 2 ** 31 - 1), st.sampled_from([torch.bfloat16, torch.float16,
                                                                             torch.float32]))
def test_da8w8_activation_quantization_is_bit_exact(k, seed, dtype):
    """One-hot int8 weights with scale 1 make output n equal x_q[:, n] * x_scale: compared exactly with
    reference.quantize_activation_per_token (rounding ties, clamping, zero rows)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(5, k, generator=g) * 10).to(dtype)
    x[1] = 0
    x[2] = (torch.round(x[2].float() * 2) / 2).clamp(-100, 100).to(dtype)  # exact halves...
    x[2, 0] = 127  # ...and amax 127, so x * (127 / amax) = x: every half is a rounding tie
    out = ops.linear_da8w8(x, ops.pack_da8w8(torch.eye(k, dtype=torch.int8), torch.ones(k)), k)
    xq, xs = reference.quantize_activation_per_token(x)
    want = (xq.float() * xs[:, None]).to(dtype)
    assert torch.equal(out, want), (out - want).abs().max()
