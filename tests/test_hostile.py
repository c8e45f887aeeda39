"""Hostile inputs to every public op (the lowbit.ops wrappers and torch.ops.lowbit.* directly) and to QuantLinear.

Each case ends in a clear exception naming the problem or in the documented result of docs/testing.md, "Edge cases"
(NaN in -> NaN out where the math says so; only the affected rows or columns change) - never a crash, never an
unwritten output (LOWBIT_DEBUG_POISON fills outputs with NaN first, see conftest.py).
"""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

import lowbit
import cases
from helpers import random_int4, random_int8
from lowbit import backends, modes, ops, reference

K, N, G = 64, 24, 32
OP = torch.ops.lowbit
MODES = cases.MODES


def _g(mode):
    return G if mode in cases.INT4_MODES else None


def _weights():
    q8, s8 = random_int8(N, K)
    q4, s4, z4 = random_int4(N, K, G, False)
    canonical = {m: ({"weight": q4, "weight_scale": s4, "weight_zero": z4} if m in cases.INT4_MODES
                     else {"weight": q8, "weight_scale": s8}) for m in MODES}
    packed = {m: cases.pack(m, canonical[m], _g(m)) for m in MODES}
    return SimpleNamespace(q8=q8, s8=s8, p8=packed["a16w8"], pd=packed["da8w8"], q4=q4, s4=s4, z4=z4,
                           p4=packed["a16w4"], canonical=canonical, packed=packed,
                           x=torch.randn(3, K, dtype=torch.bfloat16), b=torch.randn(N, dtype=torch.bfloat16))


def _on_meta(w):
    return SimpleNamespace(packed={m: p.to("meta") for m, p in w.packed.items()})


@pytest.fixture(scope="module")
def w():
    torch.manual_seed(1)
    return _weights()


def _run(mode, x, w, bias=None, out_features=N):
    """The wrapper of `mode` on w's packed weight of that mode."""
    return ops.linear(mode, x, w.packed[mode], out_features, _g(mode), bias)


def _run_op(mode, x, w, bias=None, out_features=N, group_size=G):
    """The op itself (no Python checks) on w's packed weight of that mode."""
    extra = (group_size,) if mode in cases.INT4_MODES else ()
    return getattr(OP, f"linear_{mode}")(x, w.packed[mode], out_features, *extra, bias)


def _run_ref(mode, x, w):
    return modes.get(mode).reference(x, w.canonical[mode], _g(mode), None, None)


def _layer(mode):
    torch.manual_seed(2)
    return lowbit.QuantLinear.from_linear(nn.Linear(K, N), mode, group_size=G)


HUGE = 2 ** 62
ROWS_BEYOND_ADDRESS_SPACE = 2 ** 42  # x [2^42, 64] fp32 = 2^50 bytes: more than any 64-bit CPU can map

# (call, exception, message regex) - the wrappers raise TypeError / ValueError / NotImplementedError naming the
# argument; the ops raise RuntimeError from their own checks. Each call runs for all three modes.
ERROR_CASES = {
    # wrong dtypes
    "x float64": (lambda m, w: _run(m, w.x.double(), w), TypeError, "x must be bfloat16, float16 or float32"),
    "x int32": (lambda m, w: _run(m, w.x.int(), w), TypeError, "x must be"),
    "x bool": (lambda m, w: _run(m, w.x.bool(), w), TypeError, "x must be"),
    "x complex": (lambda m, w: _run(m, w.x.to(torch.complex64), w), TypeError, "x must be"),
    "x not a tensor": (lambda m, w: _run(m, w.x.tolist(), w), TypeError, "x must be a torch.Tensor"),
    "packed float": (lambda m, w: ops.linear_a16w8(w.x, w.p8.float(), N), TypeError, "packed_weight must be uint8"),
    "bias other dtype": (lambda m, w: _run(m, w.x, w, w.b.float()), TypeError, "bias must be of x's dtype"),
    "op x float64": (lambda m, w: _run_op(m, w.x.double(), w), RuntimeError, "x must be bfloat16, float16 or float32"),
    "op x complex": (lambda m, w: _run_op(m, w.x.to(torch.complex64), w), RuntimeError, "x must be bfloat16"),
    "op packed int8": (lambda m, w: OP.linear_a16w8(w.x, w.p8.view(torch.int8), N, None), RuntimeError,
                       "packed_weight must be uint8"),
    "op bias other dtype": (lambda m, w: _run_op(m, w.x, w, w.b.half()), RuntimeError, "bias must have x's dtype"),
    # wrong ranks
    "x 0-d": (lambda m, w: _run(m, w.x[0, 0], w), ValueError, "at least one dimension"),
    "op x 0-d": (lambda m, w: _run_op(m, w.x[0, 0], w), RuntimeError, "at least one dimension"),
    "packed 1-d": (lambda m, w: ops.linear_a16w8(w.x, w.p8.flatten(), N), ValueError, "packed for another shape"),
    "op packed 1-d": (lambda m, w: OP.linear_a16w8(w.x, w.p8.flatten(), N, None), RuntimeError,
                      "does not hold out_features"),
    "op packed 3-d": (lambda m, w: OP.linear_a16w8(w.x, w.p8[None], N, None), RuntimeError,
                      "does not hold out_features"),
    "op packed 0-d": (lambda m, w: OP.linear_a16w8(w.x, w.p8[0, 0], N, None), RuntimeError,
                      "does not hold out_features"),
    "bias 2-d": (lambda m, w: _run(m, w.x, w, w.b[None]), ValueError, r"bias must have shape \[out_features\]"),
    "op bias 0-d": (lambda m, w: _run_op(m, w.x, w, w.b[0]), RuntimeError, r"bias must have shape \[out_features\]"),
    # mismatched shapes
    "K mismatch": (lambda m, w: _run(m, torch.randn(3, 2 * K, dtype=torch.bfloat16), w), ValueError,
                   "packed for another shape"),
    "N mismatch": (lambda m, w: _run(m, w.x, w, out_features=N + 16), ValueError, "packed for another shape"),
    "op K mismatch": (lambda m, w: _run_op(m, torch.randn(3, 2 * K, dtype=torch.bfloat16), w), RuntimeError,
                      "does not match the in_features|not divisible by group_size"),
    "op N mismatch": (lambda m, w: _run_op(m, w.x, w, out_features=N + 16), RuntimeError,
                      "does not hold out_features"),
    "bias length": (lambda m, w: _run(m, w.x, w, w.b[:-1]), ValueError, r"bias must have shape \[out_features\]"),
    "op bias length": (lambda m, w: _run_op(m, w.x, w, w.b[:-1]), RuntimeError, r"bias must have shape"),
    "other mode's packing": (lambda m, w: ops.linear_da8w8(w.x, w.p8, N), ValueError,
                             "has the size of pack_a16w8's packing for K = 64, not of pack_da8w8's"),
    # zero-size dims (empty batches are fine: see test_empty_batches_give_empty_outputs)
    "K = 0": (lambda m, w: _run(m, w.x[:, :0], w), ValueError, "K must be positive"),
    "op K = 0, packed shaped for K = 0": (
        lambda m, w: OP.linear_a16w8(w.x[:, :0], torch.zeros(2, 64, dtype=torch.uint8), N, None), RuntimeError,
        "K must be positive"),
    "op da8w8 K = 0": (lambda m, w: OP.linear_da8w8(w.x[:, :0], torch.zeros(2, 128, dtype=torch.uint8), N, None),
                       RuntimeError, "K must be positive"),
    "out_features 0": (lambda m, w: _run(m, w.x, w, out_features=0), ValueError, "out_features must be a positive"),
    "op out_features -1": (lambda m, w: _run_op(m, w.x, w, out_features=-1), RuntimeError,
                           "out_features must be positive"),
    # huge dims and sizes
    "out_features 2^62": (lambda m, w: _run(m, w.x, w, out_features=HUGE), ValueError, "packed for another shape"),
    "op out_features 2^62": (lambda m, w: _run_op(m, w.x, w, out_features=HUGE), RuntimeError,
                             "does not hold out_features"),
    "op out_features INT64_MAX": (lambda m, w: _run_op(m, w.x, w, out_features=2 ** 63 - 1), RuntimeError,
                                  r"does not hold out_features = 9223372036854775807 \(expected 576460752303423488"),
    "op out_features 2^64": (lambda m, w: _run_op(m, w.x, w, out_features=2 ** 64), RuntimeError,
                             "Expected a value of type 'int'"),
    "op group_size 2^62": (lambda m, w: OP.linear_a16w4(w.x, w.p4, N, HUGE, None), RuntimeError,
                           "not divisible by group_size"),
    "op group_size negative": (lambda m, w: OP.linear_a16w4(w.x, w.p4, N, -2, None), RuntimeError,
                               "group_size must be a positive even number"),
    "x expanded beyond memory": (lambda m, w: _run(m, w.x[:1].expand(ROWS_BEYOND_ADDRESS_SPACE, K), w), ValueError,
                                 "x must be contiguous"),
    # non-contiguous and overlapping views (QuantLinear copies them: test_quantlinear_copies_strided_inputs)
    "x strided": (lambda m, w: _run(m, torch.randn(3, 2 * K, dtype=torch.bfloat16)[:, ::2], w), ValueError,
                  "x must be contiguous"),
    "x transposed": (lambda m, w: _run(m, torch.randn(K, K, dtype=torch.bfloat16).t(), w), ValueError,
                     "x must be contiguous"),
    "x expanded (stride 0)": (lambda m, w: _run(m, w.x[:1].expand(5, K), w), ValueError, "x must be contiguous"),
    "x overlapping rows": (lambda m, w: _run(m, w.x.flatten().as_strided((5, K), (1, 1)), w), ValueError,
                           "x must be contiguous"),
    "op x strided": (lambda m, w: _run_op(m, torch.randn(3, 2 * K, dtype=torch.bfloat16)[:, ::2], w), RuntimeError,
                     "x must be contiguous"),
    "op x overlapping rows": (lambda m, w: _run_op(m, w.x.flatten().as_strided((5, K), (1, 1)), w), RuntimeError,
                              "x must be contiguous"),
    "op x expanded beyond memory": (
        lambda m, w: _run_op(m, w.x[:1].expand(ROWS_BEYOND_ADDRESS_SPACE, K), w), RuntimeError, "x must be contiguous"),
    "bias expanded": (lambda m, w: _run(m, w.x, w, w.b[:1].expand(N)), RuntimeError, "bias must be contiguous"),
    "packed strided": (lambda m, w: ops.linear_a16w8(w.x, torch.empty_strided(w.p8.shape, (1, w.p8.shape[0]),
                                                                                dtype=torch.uint8).copy_(w.p8), N),
                       RuntimeError, "packed_weight must be contiguous"),
    # wrong device: CPU tensors mixed with meta ones (all-meta calls are shape inference: test_meta_tensors...)
    "packed on meta": (lambda m, w: _run(m, w.x, _on_meta(w)), ValueError, "one device"),
    "bias on meta": (lambda m, w: _run(m, w.x, w, w.b.to("meta")), ValueError, "one device"),
    "x on meta": (lambda m, w: _run(m, w.x.to("meta"), w), ValueError, "one device"),
    # the ops themselves: one meta tensor among CPU ones dispatches to the fake kernel, which must refuse it rather
    # than return an unwritten CPU tensor (issue 11, item 2)
    "op packed on meta": (lambda m, w: _run_op(m, w.x, _on_meta(w)), RuntimeError,
                          "all tensors must be on one device, got x on cpu, packed_weight on meta"),
    "op bias on meta": (lambda m, w: _run_op(m, w.x, w, w.b.to("meta")), RuntimeError,
                        "all tensors must be on one device, got x on cpu, packed_weight on cpu, bias on meta"),
    "op x on meta": (lambda m, w: _run_op(m, w.x.to("meta"), w, w.b), RuntimeError, "one device"),
    # every op checks the bounds it relies on, whoever packed the weight (issue 11, item 5): a hand-made packing
    # for K past da8w8's int32 accumulator bound
    "op da8w8 K above the int32 bound, hand-made packing": (
        lambda m, w: OP.linear_da8w8(torch.randn(1, 140000), torch.zeros(2, backends.CPU.layout(modes.get("da8w8")).panel_size(140000, None),
                                                                          dtype=torch.uint8), N, None),
        RuntimeError, "da8w8 supports K <= 132104 \\(int32 accumulation\\), got K = 140000"),
    # the error names the argument that is wrong (issue 11, item 13)
    "op other mode's packing": (lambda m, w: OP.linear_a16w8(w.x, w.pd, N, None), RuntimeError,
                                "packed_weight has the size of pack_da8w8's packing for K = 64, not of pack_a16w8's"),
    "op other group size": (lambda m, w: OP.linear_a16w4(w.x, w.p4, N, 64, None), RuntimeError,
                            "group_size = 64 does not match packed_weight, whose size is that of group_size = 32"),
    "a16w8 packing to a16w4": (lambda m, w: ops.linear_a16w4(w.x, w.p8, N, G), ValueError,
                               "packed for another shape"),
}

PACK_ERROR_CASES = {
    # wrong dtypes
    "int8 weight as uint8": (lambda w: ops.pack_a16w8(w.q8.view(torch.uint8), w.s8), TypeError, "weight must be int8"),
    "int8 scales float64": (lambda w: ops.pack_da8w8(w.q8, w.s8.double()), TypeError, "scales must be float32"),
    "int4 weight as int8": (lambda w: ops.pack_a16w4(w.q4.view(torch.int8), w.s4, w.z4, G), TypeError,
                            "weight must be uint8"),
    "int4 zeros int64": (lambda w: ops.pack_a16w4(w.q4, w.s4, w.z4.long(), G), TypeError, "zeros must be uint8"),
    "int4 scales bfloat16": (lambda w: ops.pack_a16w4(w.q4, w.s4.bfloat16(), w.z4, G), TypeError,
                             "scales must be float32"),
    "op int8 weight float": (lambda w: OP.pack_a16w8(w.q8.float(), w.s8), RuntimeError, "weight must be int8"),
    "op int4 zeros int8": (lambda w: OP.pack_a16w4(w.q4, w.s4, w.z4.view(torch.int8), G), RuntimeError,
                           "zeros must be uint8"),
    # wrong ranks and shapes
    "int8 weight 1-d": (lambda w: ops.pack_a16w8(w.q8[0], w.s8), ValueError, "2-D"),
    "int8 weight 3-d": (lambda w: ops.pack_da8w8(w.q8[None], w.s8), ValueError, "2-D"),
    "int8 scales 2-d": (lambda w: ops.pack_a16w8(w.q8, w.s8[:, None]), ValueError, r"scales must have shape \[N\]"),
    "op int8 weight 3-d": (lambda w: OP.pack_a16w8(w.q8[None], w.s8), RuntimeError, "2-D"),
    "op int8 scales 0-d": (lambda w: OP.pack_da8w8(w.q8, w.s8[0]), RuntimeError, r"scales must have shape \[N\]"),
    "int4 scales transposed shape": (lambda w: ops.pack_a16w4(w.q4, w.s4.t(), w.z4, G), ValueError,
                                     "scales must have shape"),
    "int4 zeros 1-d": (lambda w: ops.pack_a16w4(w.q4, w.s4, w.z4[:, 0], G), ValueError, "zeros must have shape"),
    "op int4 zeros 1-d": (lambda w: OP.pack_a16w4(w.q4, w.s4, w.z4[:, 0].contiguous(), G), RuntimeError,
                          "zeros must have shape"),
    "int4 group_size odd": (lambda w: ops.pack_a16w4(w.q4, w.s4, w.z4, 3), ValueError, "positive even"),
    "int4 group_size 0": (lambda w: ops.pack_a16w4(w.q4, w.s4, w.z4, 0), ValueError, "positive even"),
    "op int4 group_size 2^62": (lambda w: OP.pack_a16w4(w.q4, w.s4, w.z4, HUGE), RuntimeError, "not divisible"),
    "op int4 group_size -2": (lambda w: OP.pack_a16w4(w.q4, w.s4, w.z4, -2), RuntimeError, "positive even"),
    # zero-size dims
    "int8 weight N = 0": (lambda w: ops.pack_a16w8(w.q8[:0], w.s8[:0]), ValueError, "non-empty"),
    "int8 weight K = 0": (lambda w: ops.pack_da8w8(w.q8[:, :0], w.s8), ValueError, "non-empty"),
    "op int8 weight K = 0": (lambda w: OP.pack_a16w8(w.q8[:, :0].contiguous(), w.s8), RuntimeError, "non-empty"),
    "op int4 weight K = 0": (lambda w: OP.pack_a16w4(w.q4[:, :0].contiguous(), w.s4[:, :0].contiguous(), None, 2),
                             RuntimeError, "non-empty"),
    # huge: K beyond int32 accumulation
    "op da8w8 K above the int32 bound": (
        lambda w: OP.pack_da8w8(torch.zeros(1, 132105, dtype=torch.int8), torch.ones(1)), RuntimeError,
        "da8w8 supports K <= 132104"),
    # out-of-range zero points
    "zero point 16": (lambda w: ops.pack_a16w4(w.q4, w.s4, torch.full_like(w.z4, 16), G), ValueError,
                      "zeros must be in 0..15"),
    "zero point 255": (lambda w: ops.pack_a16w4(w.q4, w.s4, torch.full_like(w.z4, 255), G), ValueError,
                       "zeros must be in 0..15"),
    "op zero point 16": (lambda w: OP.pack_a16w4(w.q4, w.s4, torch.full_like(w.z4, 16), G), RuntimeError,
                         "zeros must be in 0..15"),
    # non-contiguous weights: the wrappers copy them (test_packing_copies_strided_weights); the ops refuse them
    "op int8 weight transposed view": (lambda w: OP.pack_a16w8(w.q8.t().contiguous().t(), w.s8), RuntimeError,
                                       "weight must be contiguous"),
    "op int8 scales expanded": (lambda w: OP.pack_da8w8(w.q8, w.s8[:1].expand(N)), RuntimeError,
                                "scales must be contiguous"),
    # wrong device
    "int8 scales on meta": (lambda w: ops.pack_a16w8(w.q8, w.s8.to("meta")), ValueError, "one device"),
    "int4 zeros on meta": (lambda w: ops.pack_a16w4(w.q4, w.s4, w.z4.to("meta"), G), ValueError, "one device"),
    "op int8 scales on meta": (lambda w: OP.pack_a16w8(w.q8, w.s8.to("meta")), RuntimeError,
                               "all tensors must be on one device, got weight on cpu, scales on meta"),
    "op da8w8 weight on meta": (lambda w: OP.pack_da8w8(w.q8.to("meta"), w.s8), RuntimeError, "one device"),
    "op int4 zeros on meta": (lambda w: OP.pack_a16w4(w.q4, w.s4, w.z4.to("meta"), G), RuntimeError,
                              "all tensors must be on one device, got weight on cpu, scales on cpu, zeros on meta"),
}

LAYER_ERROR_CASES = {
    "x float64": (lambda m: _layer(m)(torch.randn(3, K, dtype=torch.float64)), TypeError, "x must be bfloat16"),
    "x int64": (lambda m: _layer(m)(torch.ones(3, K, dtype=torch.int64)), TypeError, "x must be"),
    "x 0-d": (lambda m: _layer(m)(torch.tensor(1.0)), ValueError, "at least one dimension"),
    "x wrong in_features": (lambda m: _layer(m)(torch.randn(3, K + 2)), ValueError,
                            rf"in_features = {K} as its last dimension, got shape \(3, {K + 2}\)"),
    "x on meta": (lambda m: _layer(m)(torch.randn(3, K, device="meta")), ValueError, "one device"),
    "in_features 0": (lambda m: lowbit.QuantLinear(0, N, mode=m), ValueError, "must be positive"),
    "out_features -1": (lambda m: lowbit.QuantLinear(K, -1, mode=m), ValueError, "must be positive"),
    "weights beyond memory": (lambda m: lowbit.QuantLinear(2 ** 47, 8, mode=m), RuntimeError, "allocate"),
    "x expanded beyond memory": (lambda m: _layer(m)(torch.zeros(1, K).expand(ROWS_BEYOND_ADDRESS_SPACE, K)),
                                 RuntimeError, "allocate"),
    "unknown mode": (lambda m: lowbit.QuantLinear(K, N, mode=m + "x"), ValueError, "mode must be one of"),
    "from_linear of a non-Linear": (lambda m: lowbit.QuantLinear.from_linear(nn.Conv1d(K, N, 1), m), TypeError,
                                    "must be an nn.Linear"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", ERROR_CASES)
def test_linear_errors(w, case, mode):
    call, exc, match = ERROR_CASES[case]
    with pytest.raises(exc, match=match):
        call(mode, w)


@pytest.mark.parametrize("case", PACK_ERROR_CASES)
def test_pack_errors(w, case):
    call, exc, match = PACK_ERROR_CASES[case]
    with pytest.raises(exc, match=match):
        call(w)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", LAYER_ERROR_CASES)
def test_quantlinear_errors(case, mode):
    call, exc, match = LAYER_ERROR_CASES[case]
    with pytest.raises(exc, match=match):
        call(mode)


# ---------------------------------------------------------------- documented results


@pytest.mark.parametrize("mode", MODES)
def test_empty_batches_give_empty_outputs(w, mode):
    for shape in [(0, K), (2, 0, K), (0, 0, K)]:
        x = torch.randn(shape, dtype=torch.bfloat16)
        for out in (_run(mode, x, w, w.b), _run_op(mode, x, w, w.b), _layer(mode)(x)):
            assert out.shape == (*shape[:-1], N) and out.dtype == x.dtype


def _nonfinite_rows(out):
    return (~torch.isfinite(out)).all(dim=-1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("m", [1, 9])  # the decode kernels and the tiled path
@pytest.mark.parametrize("mode", MODES)
def test_nan_and_inf_activations_poison_only_their_row(w, mode, m, dtype):
    x = torch.randn(m, K, dtype=dtype)
    clean = _run(mode, x, w, w.b.to(dtype))
    assert torch.isfinite(clean).all()
    for bad in (float("nan"), float("inf"), float("-inf")):
        for row in {0, m - 1}:
            xb = x.clone()
            xb[row, K // 3] = bad
            out = _run(mode, xb, w, w.b.to(dtype))
            if bad != bad or modes.get(mode).dynamic_activations:  # NaN, or a non-finite row in da*: scale NaN
                assert out[row].isnan().all()
            else:  # Inf * w is +-Inf, or NaN where w == 0: never a finite value
                assert _nonfinite_rows(out)[row]
            others = [r for r in range(m) if r != row]
            assert torch.equal(out[others], clean[others]), "another row changed"


@pytest.mark.parametrize("mode", MODES)
def test_nonfinite_and_zero_scales_affect_only_their_column(mode):
    torch.manual_seed(3)
    x = torch.randn(9, K, dtype=torch.float32)
    bias = torch.randn(N)

    def run(scales):
        w = cases.random_weights(mode, N, K, _g(mode))
        w["weight_scale"] = (scales[:, None].expand_as(w["weight_scale"]) if mode in cases.INT4_MODES
                             else scales).contiguous()
        return cases.linear(mode, x, cases.pack(mode, w, _g(mode)), N, _g(mode), bias)

    base = torch.rand(N) * 0.02 + 0.001
    torch.manual_seed(4)
    clean = run(base)
    for value, col in [(float("nan"), 0), (float("inf"), 5), (-float("inf"), N - 1), (0.0, 7)]:
        s = base.clone()
        s[col] = value
        torch.manual_seed(4)  # same weights as `clean`
        out = run(s)
        others = [c for c in range(N) if c != col]
        assert torch.equal(out[:, others], clean[:, others]), f"scale {value} changed other columns"
        if value == 0.0:
            assert torch.equal(out[:, col], bias[col].expand(9)), "a zero scale must give exactly the bias"
        elif value != value:
            assert out[:, col].isnan().all()
        else:
            assert (~torch.isfinite(out[:, col])).all()


@pytest.mark.parametrize("mode", MODES)
def test_extreme_weights_and_zero_points(mode):
    """-128 int8 weights (the quantizers never make them, the ops accept them) and zero points 0 and 15."""
    x = torch.randn(5, K)
    description = modes.get(mode)
    if description.grouped:
        extremes = []
        for z in (0, 15):
            q4, s4, _ = random_int4(N, K, G, True)
            extremes.append({"weight": q4, "weight_scale": s4,
                             "weight_zero": torch.full((N, K // G), z, dtype=torch.uint8)})
    else:
        extremes = [{"weight": torch.full((N, K), -128, dtype=torch.int8), "weight_scale": torch.rand(N) * 0.02}]
    for c in extremes:
        out = cases.linear(mode, x, cases.pack(mode, c, _g(mode)), N, _g(mode))
        cases.check(mode, out, x, c, _g(mode))


def test_da8w8_is_exact_at_the_largest_k():
    """K = 132104 products of -127 x -128 (the extreme of both signs) still sum within int32; one more K is refused
    (the bound used to be 127 * 127-based and let such sums wrap)."""
    k = 132104
    q8 = torch.full((16, k), -128, dtype=torch.int8)
    s8 = torch.ones(16)
    x = torch.stack([-torch.ones(k), torch.ones(k)])  # quantized to -127 and 127 exactly, scale 1/127
    out = ops.linear_da8w8(x, ops.pack_da8w8(q8, s8), 16)
    ref = reference.linear_da8w8(x, q8, s8, dtype=torch.float64)
    assert torch.allclose(out.double(), ref, rtol=1e-6, atol=0), (out[:, 0], ref[:, 0])
    with pytest.raises(RuntimeError, match="da8w8 supports K <= 132104"):
        ops.pack_da8w8(torch.zeros(1, k + 1, dtype=torch.int8), torch.ones(1))


def test_fp16_overflow_gives_inf_like_the_reference(w):
    x = torch.full((2, K), 3e4, dtype=torch.float16)
    for mode in MODES:
        out = _run(mode, x, w)
        ref = _run_ref(mode, x, w)
        assert torch.equal(torch.isinf(out), torch.isinf(ref)) and torch.isinf(out).any()


@pytest.mark.parametrize("mode", MODES)
def test_quantlinear_copies_strided_inputs(mode):
    layer = _layer(mode)
    base = torch.randn(6, 2 * K, dtype=torch.bfloat16)
    for view in (base[:, ::2], base[:, :K].t().contiguous().t(), base[:1, :K].expand(4, K),
                 base.flatten().as_strided((5, K), (1, 1))):
        assert torch.equal(layer(view), layer(view.contiguous()))


def test_packing_copies_strided_weights(w):
    assert torch.equal(ops.pack_a16w8(w.q8.t().contiguous().t(), w.s8), w.p8)
    assert torch.equal(ops.pack_da8w8(w.q8, w.s8.repeat_interleave(2)[::2]), w.pd)
    assert torch.equal(ops.pack_a16w4(w.q4.t().contiguous().t(), w.s4.t().contiguous().t(), w.z4, G), w.p4)


@pytest.mark.parametrize("mode", MODES)
def test_meta_tensors_give_shapes_only(w, mode):
    """All-meta calls run the fake kernels (shape inference, as torch.compile does): no data, no error."""
    meta = _on_meta(w)
    x = torch.empty(7, 2, K, dtype=torch.float16, device="meta")
    for out in (_run(mode, x, meta), _run_op(mode, x, meta)):
        assert out.device.type == "meta" and out.shape == (7, 2, N) and out.dtype == torch.float16
    packed = cases.pack(mode, {k: v.to("meta") for k, v in w.canonical[mode].items()}, _g(mode))
    assert packed.device.type == "meta" and packed.shape == w.packed[mode].shape
