"""The SYCL da8w4 kernels (sycl/kernels/da8w4.sycl, pack.sycl's pack_da8w4), run on the CPU as a SYCL device
through torch.ops.lowbit_sycl, against lowbit.reference.linear_da8w4: every launch path (rows = decode, with 8 or
1 columns per work-item at M = 1; tiled = local-memory tiles), activation dtype, group size, symmetric and
asymmetric weights, with outputs poisoned with NaN (LOWBIT_DEBUG_POISON, tests/conftest.py).

Semantics (issue 12):
  xq[m], xs[m] = per-token int8 quantization of x, exactly as da8w8 (round half to even, symmetric amax / 127,
                 NaN/Inf rows give NaN outputs, rows with amax < 2^-120 pre-scaled by 2^64)
  d_G[m, n]    = sum_{k in G} (q[n, k] - z[n, G]) * xq[m, k]          exact int32 (|d| <= 15 * 127 * g)
  y[m, n]      = xs[m] * sum_G scale[n, G] * float(d_G[m, n]) + bias[n], in fp32, output in x's dtype.

Tolerance (assert_close): the quantization and the int32 group sums are exact, so only the fp32 epilogue rounds:
float(d) (once per group, and only when |d| >= 2^24), the running sum of the K/g scaled group sums (one fma
rounding per group, each at most u32 times the sum of the magnitudes so far), the multiplication by xs and the
bias addition: at most (K/g + 3) roundings of u32 = 2^-24 relative to mag = xs * sum_G |scale * d_G| + |bias|, to
first order; (K/g + 4) covers the second-order terms. Then one rounding to the output dtype (its unit roundoff
times |y|, plus half its smallest subnormal for outputs in the subnormal range). A wrong, missing or doubled group
or element moves y by about mag / (K/g) or more, orders of magnitude above this bound for the K/g used here.
"""

import os

import pytest
import torch

import lowbit
from helpers import U32, UNIT_ROUNDOFF, da8w4_magnitude, sycl_cpu_device
from lowbit import formats, reference
from lowbit.layouts import _sycl_da8w4

DTYPES = [torch.bfloat16, torch.float16, torch.float32]
MS = [0, 1, 3, 17, 67]  # 67: a partial 32-row tile and a partial 4-row block
N = 77  # not a multiple of 64: a partial panel (and a partial 32-column tile)
# (K, group_size): g = 8, 32, 64, 128 and per channel; K = 136 and 200 are not multiples of the 32-wide tile step;
# K/g = 65 groups and more: the quantize kernel sums the groups of xq one per work-item (64 a row), fewer are
# summed by the whole work-group
KG = [(64, 8), (136, 8), (520, 8), (256, 32), (320, 64), (384, 128), (200, 200), (2048, 128)]
# (LOWBIT_SYCL_TILED_MIN_M, LOWBIT_SYCL_DECODE_COLS) forcing each launch path: rows = the decode kernels as the CPU
# device picks them (8 columns per work-item at M = 1), rows-1col = one column per work-item (a GPU's choice)
PATHS = {"rows": ("1000000000", ""), "rows-1col": ("1000000000", "1"), "tiled": ("0", "")}
MAX_GROUP = (2 ** 31 - 1) // (15 * 127)  # 1127288, csrc/op_checks.h kMaxGroupDA8W4

HALF_MIN_SUBNORMAL = {torch.bfloat16: 2.0 ** -134, torch.float16: 2.0 ** -25, torch.float32: 2.0 ** -150}


DEVICE, WHY_NOT = sycl_cpu_device()
needs_sycl = pytest.mark.skipif(DEVICE is None, reason=f"SYCL CPU device unavailable: {WHY_NOT}")
op = torch.ops.lowbit_sycl


def test_sycl_path_runs_in_ci():
    """CI installs the SYCL runtime (Makefile), so there the SYCL tests must run, never skip."""
    if DEVICE is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the SYCL path is unavailable: {WHY_NOT}")
        pytest.skip(f"SYCL CPU device unavailable: {WHY_NOT}")
    assert DEVICE and os.environ.get("LOWBIT_DEBUG_POISON") == "1"


@pytest.fixture(params=list(PATHS))
def path(request, monkeypatch):
    tiled_min_m, decode_cols = PATHS[request.param]
    monkeypatch.setenv("LOWBIT_SYCL_TILED_MIN_M", tiled_min_m)
    monkeypatch.setenv("LOWBIT_SYCL_DECODE_COLS", decode_cols)
    return request.param


# ------------------------------------------------------------------ reference

def random_weight(n, k, g, symmetric):
    """(q uint8 [N, K], canonical [N, K/2], scales float32 [N, K/g], zeros uint8 [N, K/g] or None)."""
    q = torch.randint(0, 16, (n, k), dtype=torch.uint8)
    scales = torch.rand(n, k // g) * 0.1 + 0.01
    zeros = None if symmetric else torch.randint(0, 16, (n, k // g), dtype=torch.uint8)
    return q, formats.pack_int4(q), scales, zeros


def quantize_per_token(x):
    """lowbit.reference's per-token quantization (da8w8's, bit for bit) of x as the ops read it: (int8 [M, K],
    float32 [M]), the rows of x flattened."""
    xq, xs = reference.quantize_activation_per_token(reference.activations(x))
    return xq.reshape(-1, x.shape[-1]), xs.reshape(-1)


def reference_da8w4(x, q, scales, zeros, g, bias):
    """(y, mag), float64 [..., N]: y = lowbit.reference.linear_da8w4 (the semantics above, exact group sums),
    mag = xs * sum_G |scale * d_G| + |bias| (the tolerance's scale, helpers.da8w4_magnitude)."""
    packed = formats.pack_int4(q)
    y = reference.linear_da8w4(x, packed, scales, zeros, g, bias, dtype=torch.float64)
    return y, da8w4_magnitude(x, packed, scales, zeros, g, bias)


def assert_close(out, x, q, scales, zeros, g, bias, extra_abs=0.0):
    ref, mag = reference_da8w4(x, q, scales, zeros, g, bias)
    assert out.shape == ref.shape and out.dtype == x.dtype
    u = UNIT_ROUNDOFF[out.dtype]
    steps = q.shape[1] // g + 4
    tol = u * ref.abs() + (1 + u) * steps * U32 * mag + HALF_MIN_SUBNORMAL[out.dtype] + extra_abs
    err = (out.double() - ref).abs()
    nan_ref = ref.isnan()
    assert out.double()[nan_ref].isnan().all(), "a NaN/Inf row gave a non-NaN output"
    bad = ~(err <= tol) & ~nan_ref  # NaN (an unwritten, poisoned element) counts as bad
    assert not bad.any(), (f"{int(bad.sum())} of {out.numel()} elements off; worst err "
                           f"{err[~nan_ref].max().item():.3e}, tol there "
                           f"{tol[~nan_ref].flatten()[err[~nan_ref].flatten().argmax()].item():.3e}")


def run(x, q, scales, zeros, g, bias=None, n=None):
    n = n or q.shape[0]
    packed = op.pack_da8w4(formats.pack_int4(q), scales, zeros, g)
    return op.linear_da8w4(x, packed, n, g, bias)


# ------------------------------------------------------------------ tests

@needs_sycl
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("k, g", KG)
@pytest.mark.parametrize("symmetric", [False, True])
def test_linear_da8w4(path, m, k, g, symmetric, dtype):
    q, _, scales, zeros = random_weight(N, k, g, symmetric)
    x = torch.randn(m, k, dtype=dtype)
    bias = torch.randn(N, dtype=dtype) if symmetric != (m % 4 == 1) else None
    packed = op.pack_da8w4(formats.pack_int4(q), scales, zeros, g)
    assert packed.shape == ((N + 63) // 64, k // 8 + k // g + (k // g + 7) // 8, 64, 4)
    out = op.linear_da8w4(x, packed, N, g, bias)
    assert_close(out, x, q, scales, zeros, g, bias)


@needs_sycl
@pytest.mark.parametrize("n", [1, 64, 130])
@pytest.mark.parametrize("m", [1, 4, 5])
def test_widths_and_batch_dims(path, n, m):
    """N below, at and past one 64-column panel; x with leading batch dimensions [2, m, K]."""
    k, g = 96, 32
    q, _, scales, zeros = random_weight(n, k, g, False)
    x = torch.randn(2, m, k, dtype=torch.bfloat16)
    bias = torch.randn(n, dtype=torch.bfloat16)
    out = run(x, q, scales, zeros, g, bias)
    assert out.shape == (2, m, n)
    assert_close(out, x, q, scales, zeros, g, bias)


@needs_sycl
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_path_gives_the_same_bits(monkeypatch, dtype):
    """The paths compute the same exact int32 group sums and the same fp32 epilogue in the same order (one fma a
    group, then xs * acc + bias), so they agree bit for bit. M = 16 and 17 around LOWBIT_SYCL_TILED_MIN_M = 17 (the
    switch a GPU makes at 16) take one path each in the same process."""
    k, g = 512, 64
    q, w, scales, zeros = random_weight(N, k, g, False)
    packed = op.pack_da8w4(w, scales, zeros, g)
    x = torch.randn(17, k, dtype=dtype)
    bias = torch.randn(N, dtype=dtype)
    outs = []
    for tiled_min_m, decode_cols in [("1000000000", "8"), ("1000000000", "1"), ("0", "8"), ("17", "8")]:
        monkeypatch.setenv("LOWBIT_SYCL_TILED_MIN_M", tiled_min_m)
        monkeypatch.setenv("LOWBIT_SYCL_DECODE_COLS", decode_cols)
        outs.append(torch.cat([op.linear_da8w4(x[:1], packed, N, g, bias), op.linear_da8w4(x[:16], packed, N, g, bias),
                               op.linear_da8w4(x, packed, N, g, bias)]))
    for other in outs[1:]:
        assert other.view(torch.int16 if dtype != torch.float32 else torch.int32).equal(
            outs[0].view(torch.int16 if dtype != torch.float32 else torch.int32))
    assert_close(outs[0][-17:], x, q, scales, zeros, g, bias)


@needs_sycl
def test_quantization_is_bit_exact(path):
    """Weights with q - z = 1 at k = n and 0 elsewhere (s = 1) make y[m, n] = xs[m] * xq[m, n]: one fp32 product
    of exact values, so the output shows the kernels' quantization bit for bit: ties, a zero row, a tiny row (the
    2^64 pre-scaling) and NaN / +Inf / -Inf rows (all-NaN outputs)."""
    k, g = 40, 8
    q = torch.full((k, k), 8, dtype=torch.uint8)
    q[torch.arange(k), torch.arange(k)] = 9
    scales = torch.ones(k, k // g)
    x = torch.randn(10, k) * 3
    x[1] = 0.0
    x[2, :4] = torch.tensor([0.5, -0.5, 1.5, 2.5]) / 127 * x[2].abs().max()
    x[3] *= 1e-38  # amax < 2^-120
    x[5, 7] = float("nan")
    x[6, 0] = float("inf")
    x[7, 39] = -float("inf")
    for m in (1, 10):
        out = run(x[:m], q, scales, None, g)
        xq, xs = quantize_per_token(x[:m])
        expected = xq.float() * xs[:, None]
        assert torch.equal(out.isnan(), expected.isnan())
        assert out[~out.isnan()].equal(expected[~expected.isnan()])
    assert out[5:8].isnan().all() and out[1].eq(0).all()


@needs_sycl
@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_and_tiny_rows(path, dtype):
    """Random weights: rows holding a NaN, +Inf or -Inf give all-NaN outputs, the other rows are unaffected; rows
    with amax < 2^-120 (fp32, and bf16, whose normal range reaches 2^-126) and a zero row (outputs = bias)."""
    k, g = 128, 32
    q, _, scales, zeros = random_weight(N, k, g, False)
    x = torch.randn(9, k)
    x[1, 5], x[3, 0], x[4, 127] = float("nan"), float("inf"), -float("inf")
    x[6] = 0.0
    if dtype != torch.float16:  # fp16 cannot hold values below 2^-120
        x[7] *= 2.0 ** -124
        x[8] = torch.randn(k).sign() * 2.0 ** -125  # ties at amax
    x = x.to(dtype)
    bias = torch.randn(N, dtype=dtype)
    for m in (1, 9):
        out = run(x[:m], q, scales, zeros, g, bias)
        # the tiny rows' outputs are subnormal in the fp32 epilogue: each of the K/g + 4 roundings may lose 2^-150
        assert_close(out, x[:m], q, scales, zeros, g, bias, extra_abs=(k // g + 4) * 2.0 ** -149)
    assert out[[1, 3, 4]].isnan().all() and not out[[0, 2, 5, 6, 7, 8]].isnan().any()
    assert out[6].equal(bias)


@needs_sycl
@pytest.mark.parametrize("m", [1, 2])
def test_group_sums_at_the_int32_bound(path, m):
    """g = K = 1127288, the largest group size (15 * 127 * g = 2^31 - 8): every |q - z| = 15 against xq = +-127
    gives d = +-(2^31 - 8), the extremes of the int32 group sum, and its two terms in the rows path (sum q xq and
    z * sum xq) reach them too. Column 2 cancels to d = -508 from partial sums past 2^30 (exactness of the fp32
    chains, which restart every 8192 elements, and of the int32 sums); column 3 is random."""
    k = g = MAX_GROUP
    h = 601220  # 1905 h - 1016 K = -508
    q = torch.zeros(4, k, dtype=torch.uint8)
    q[0] = 15
    q[2, :h] = 15
    q[3] = torch.randint(0, 16, (k,), dtype=torch.uint8)
    zeros = torch.tensor([[0], [15], [8], [5]], dtype=torch.uint8)
    scales = torch.tensor([[1.0], [1.0], [0.75], [0.01]])
    x = torch.stack([torch.ones(k), -torch.ones(k)])[:m]
    out = run(x, q, scales, zeros, g)
    xq, xs = quantize_per_token(x)
    assert (xq.abs() == 127).all()
    d = torch.tensor([1905 * k, -1905 * k, 1905 * h - 1016 * k], dtype=torch.float64)
    assert d[0] == 2 ** 31 - 8 and d[2] == -508
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64)[:m, None]
    expected = xs.double()[:, None] * sign * (d.float().double() * scales[:3, 0].double())
    # one fp32 rounding of xs * float(d) * s (s = 1 or 0.75: exact products with d), plus the fma's
    torch.testing.assert_close(out[:, :3].double(), expected, rtol=2 ** -22, atol=0)
    assert_close(out, x, q, scales, zeros, g, None)


@needs_sycl
def test_unpack_of_pack_is_the_canonical_weight():
    for n, k, g in [(1, 8, 8), (77, 136, 8), (64, 256, 32), (130, 512, 64), (5, 200, 200), (70, 1024, 16)]:
        for symmetric in (False, True):
            _, w, scales, zeros = random_weight(n, k, g, symmetric)
            packed = op.pack_da8w4(w, scales, zeros, g)
            c = _sycl_da8w4(packed, n, k, g, symmetric)
            assert c.weight.equal(w) and c.scale.equal(scales)
            assert c.zero is None if symmetric else c.zero.equal(zeros)
            if symmetric:  # symmetric = zero point 8 in every group
                assert _sycl_da8w4(packed, n, k, g, False).zero.eq(8).all()
            # columns past N are zero (weights, scales and zero points)
            pad = packed.permute(0, 2, 1, 3).reshape(-1, packed.shape[1] * 4)[n:]
            assert pad.eq(0).all()


@needs_sycl
def test_m_zero_and_empty_batch():
    q, _, scales, zeros = random_weight(N, 64, 8, False)
    assert run(torch.randn(0, 64), q, scales, zeros, 8).shape == (0, N)
    assert run(torch.randn(3, 0, 64), q, scales, zeros, 8).shape == (3, 0, N)


@needs_sycl
def test_bad_inputs_are_clear_errors():
    k, g = 64, 32
    q, w, s, z = random_weight(N, k, g, False)
    packed = op.pack_da8w4(w, s, z, g)
    x = torch.randn(3, k)
    big = MAX_GROUP + 8
    pack_cases = [
        ((w, s, z, 0), "group_size to be a positive multiple of 8, got 0"),
        ((w, s, z, -8), "group_size to be a positive multiple of 8, got -8"),
        ((w, s, z, 12), "group_size to be a positive multiple of 8, got 12"),
        ((w[:, :20].contiguous(), s, z, 16), r"K = 40 is not divisible by group_size = 16"),
        ((torch.zeros(1, big // 2, dtype=torch.uint8), torch.ones(1, 1), None, big),
         f"da8w4 supports group_size <= {MAX_GROUP} .* got group_size = {big}"),
        ((w.view(torch.int8), s, z, g), "weight must be uint8"),
        ((w, s.half(), z, g), "scales must be float32"),
        ((w, s, z.int(), g), "zeros must be uint8"),
        ((w, s, z + 16, g), r"zeros must be in 0..15, found"),
        ((w[:, :20], s, z, 16), "weight must be contiguous"),
        ((w, s[:, :1].contiguous(), z, g), r"scales must have shape \[N, K/group_size\] = \[77, 2\]"),
        ((w, s, z[:-1], g), r"zeros must have shape \[N, K/group_size\] = \[77, 2\]"),
        ((w[:0], s[:0], z[:0], g), "weight must be a non-empty 2-D"),
    ]
    for args, message in pack_cases:
        with pytest.raises(RuntimeError, match=message):
            op.pack_da8w4(*args)
    linear_cases = [
        ((x, packed, N, 64, None), "group_size = 64 does not match packed_weight, whose size is that of group_size "
                                   "= 32 for K = 64"),
        ((x, packed, N, 12, None), "group_size to be a positive multiple of 8, got 12"),
        ((x, packed, N, 0, None), "group_size to be a positive multiple of 8, got 0"),
        ((x, packed, N, 48, None), "K = 64 is not divisible by group_size = 48"),
        ((x, packed, N, big, None), f"da8w4 supports group_size <= {MAX_GROUP}"),
        ((torch.randn(3, 96), packed, N, g, None), r"x.size\(-1\) = 96 does not match the in_features"),
        ((x, packed.reshape(packed.shape[0], -1), N, g, None), "not in the SYCL layout"),
        ((x, packed, N + 64, g, None), "panels of 64 columns, out_features = 141 needs 3"),
        ((x, packed, 0, g, None), "out_features must be positive"),
        ((x.long(), packed, N, g, None), "x must be bfloat16, float16 or float32, got dtype Long"),
        ((x, packed.view(torch.int8), N, g, None), "packed_weight must be uint8"),
        ((x, packed, N, g, torch.randn(N, dtype=torch.bfloat16)), "bias must have x's dtype"),
        ((x, packed, N, g, torch.randn(N + 1)), r"bias must have shape \[out_features\] = \[77\]"),
        ((torch.randn(3, 0), torch.zeros(2, 0, 64, 4, dtype=torch.uint8), N, 8, None), "K must be positive"),
        ((torch.tensor(1.0), packed, N, 8, None), "at least one dimension"),
    ]
    for args, message in linear_cases:
        with pytest.raises(RuntimeError, match=message):
            op.linear_da8w4(*args)


@needs_sycl
def test_a_packing_of_another_mode_is_refused():
    """Packings of a16w4 (and of the int8 modes) for the same weight differ in size from da8w4's for these shapes,
    so the shape checks refuse them rather than reading scales as zero points."""
    k, g = 256, 32
    _, w, s, z = random_weight(N, k, g, False)
    x = torch.randn(2, k)
    with pytest.raises(RuntimeError, match="does not match"):
        op.linear_da8w4(x, op.pack_a16w4(w, s, z, g), N, g, None)
    q8 = torch.randint(-127, 128, (N, k), dtype=torch.int8)
    with pytest.raises(RuntimeError, match="does not match"):
        op.linear_da8w4(x, op.pack_da8w8(q8, torch.ones(N)), N, g, None)


@needs_sycl
@pytest.mark.parametrize("k, g", [(136, 8), (144, 16), (40, 8)])
def test_blocks_past_k_never_close_a_group(path, k, g):
    """The tiled path steps 32 elements at a time; when K is not a multiple of 32 the last step has blocks past K.
    They must not count as a group's end (they would scale a zero sum by the word after the last scale: the first
    zero-point word, here 0xFFF..... = NaN, from zero points 15 in groups 5, 6 and 7)."""
    q, _, scales, zeros = random_weight(N, k, g, False)
    zeros[:, 5:8] = 15
    x = torch.randn(40, k)
    for m in (1, 3, 40):
        assert_close(run(x[:m], q, scales, zeros, g), x[:m], q, scales, zeros, g, None)


@needs_sycl
@pytest.mark.parametrize("seed", range(24))
def test_random_shapes(monkeypatch, seed):
    """Random shapes, group sizes (any multiple of 8 dividing K), paths, dtypes and zero points, each seed its own."""
    gen = torch.Generator().manual_seed(1000 + seed)

    def pick(n):
        return int(torch.randint(0, n, (1,), generator=gen))

    k = 8 * (1 + pick(96))
    group_sizes = [d for d in range(8, k + 1, 8) if k % d == 0]
    g = group_sizes[pick(len(group_sizes))]
    n, m = 1 + pick(150), pick(41)
    dtype, symmetric = DTYPES[pick(3)], bool(pick(2))
    tiled_min_m, decode_cols = PATHS[list(PATHS)[pick(3)]]
    monkeypatch.setenv("LOWBIT_SYCL_TILED_MIN_M", tiled_min_m)
    monkeypatch.setenv("LOWBIT_SYCL_DECODE_COLS", decode_cols)
    torch.manual_seed(seed)
    q, _, scales, zeros = random_weight(n, k, g, symmetric)
    x = (torch.randn(m, k) * torch.rand(m, 1) * 10).to(dtype)
    bias = torch.randn(n, dtype=dtype) if pick(2) else None
    assert_close(run(x, q, scales, zeros, g, bias), x, q, scales, zeros, g, bias)
