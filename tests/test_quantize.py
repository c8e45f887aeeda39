"""Quantizers (lowbit.formats), QuantLinear and quantize_."""

import logging

import pytest
import torch
from torch import nn

import lowbit
from lowbit import formats, modes, reference
from lowbit.nn import QuantLinear


def test_int4_nibble_order_round_trips():
    q = torch.randint(0, 16, (5, 12), dtype=torch.uint8)
    packed = formats.pack_int4(q)
    assert packed.shape == (5, 6)
    assert int(packed[0, 0]) == int(q[0, 0]) | int(q[0, 1]) << 4  # element k even in the low nibble
    assert torch.equal(formats.unpack_int4(packed), q)


def test_int8_rtn_error_is_half_a_step():
    w = torch.randn(30, 70)
    q, s = formats.quantize_int8(w)
    err = (reference.dequantize_int8(q, s) - w.double()).abs()
    assert (err <= s.double()[:, None] / 2 + 1e-7).all()


@pytest.mark.parametrize("group_size", [32, 128, None])
@pytest.mark.parametrize("symmetric", [False, True])
def test_int4_rtn_error_is_half_a_step(group_size, symmetric):
    w = torch.randn(20, 256)
    packed, s, z = formats.quantize_int4(w, group_size, symmetric)
    g = group_size or 256
    deq = reference.dequantize_int4(packed, s, z, g)
    step = s.double().repeat_interleave(g, dim=1)
    # symmetric clamps -amax to -7 steps, which is exact, so half a step holds there too
    assert ((deq - w.double()).abs() <= step / 2 + 1e-6).all()


def test_zero_rows_do_not_divide_by_zero():
    w = torch.zeros(3, 64)
    q, s = formats.quantize_int8(w)
    assert torch.isfinite(s).all() and not q.any()
    packed, s4, z4 = formats.quantize_int4(w, 32)
    assert torch.isfinite(s4).all()
    assert not reference.dequantize_int4(packed, s4, z4, 32).any()


@pytest.mark.parametrize("mode", lowbit.MODES)
def test_quant_linear_matches_its_dequantized_weight(mode):
    lin = nn.Linear(128, 48).to(torch.bfloat16)
    q = QuantLinear.from_linear(lin, mode, group_size=32)
    x = torch.randn(6, 128, dtype=torch.bfloat16)
    with torch.no_grad():
        out = q(x)
        if modes.get(mode).dynamic_activations:  # the activation rounding is part of the mode
            ref = modes.get(mode).reference(x, q.canonical(), q.group_size, q.bias, None)
        else:
            ref = x.double() @ q.dequantized_weight().double().T + lin.bias.double()
        # within a few bf16 roundings of the output (see helpers.assert_close_a16 for the exact bound)
        torch.testing.assert_close(out.double(), ref.double(), rtol=2 ** -6, atol=2 ** -6)


def test_quant_linear_accepts_non_contiguous_input_and_other_bias_dtype():
    lin = nn.Linear(64, 16)  # fp32 bias
    q = QuantLinear.from_linear(lin, "a16w8")
    x = torch.randn(64, 8, dtype=torch.bfloat16).T  # non-contiguous view
    out = q(x)
    torch.testing.assert_close(out, q(x.contiguous()), rtol=0, atol=0)


def test_quantize_replaces_linears_and_respects_filter():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Sequential(nn.Linear(64, 32), nn.Linear(32, 8)))
    lowbit.quantize_(model, "a16w8", filter_fn=lambda m, fqn: fqn != "2.1")
    assert isinstance(model[0], QuantLinear) and isinstance(model[2][0], QuantLinear)
    assert type(model[2][1]) is nn.Linear


def test_quantize_skips_layers_the_mode_cannot_take(caplog):
    model = nn.Sequential(nn.Linear(96, 64), nn.Linear(64, 8))
    with caplog.at_level(logging.WARNING, logger="lowbit"):
        lowbit.quantize_(model, "a16w4", group_size=64)
    assert type(model[0]) is nn.Linear and isinstance(model[1], QuantLinear)
    assert "keeping 0 as nn.Linear" in caplog.text and "not divisible by group_size = 64" in caplog.text


@pytest.mark.parametrize("bad, exc", [
    (dict(mode="a16w2"), ValueError), (dict(model=3), TypeError), (dict(model=nn.Linear(4, 4)), ValueError)])
def test_quantize_bad_arguments(bad, exc):
    args = dict(model=nn.Sequential(nn.Linear(4, 4)), mode="a16w8") | bad
    with pytest.raises(exc):
        lowbit.quantize_(args.pop("model"), **args)


def test_quant_linear_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        QuantLinear(64, 8, mode="w3")
    with pytest.raises(ValueError, match="not divisible by group_size"):
        QuantLinear(96, 8, mode="a16w4", group_size=64)
    with pytest.raises(TypeError, match="nn.Linear"):
        QuantLinear.from_linear(nn.Conv1d(3, 3, 1))


@pytest.mark.parametrize("cast", [lambda m: m.to(torch.bfloat16), lambda m: m.half(), lambda m: m.float()])
def test_casting_a_quantized_model_keeps_its_scales_exact(cast):
    model = lowbit.quantize_(nn.Sequential(nn.Linear(64, 32, bias=False)), "a16w4", group_size=32)
    scale = model[0].weight_scale.clone()
    x = torch.randn(3, 64, dtype=torch.bfloat16)
    with torch.no_grad():
        before = model(x)
        cast(model)
        assert model[0].weight_scale.dtype == torch.float32 and torch.equal(model[0].weight_scale, scale)
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    assert list(model.state_dict()) == ["0.weight", "0.weight_scale", "0.weight_zero"]


@pytest.mark.parametrize("quantize", [formats.quantize_int8, lambda w: formats.quantize_int4(w, 32)])
def test_non_finite_weights_are_refused(quantize):
    w = torch.randn(4, 64)
    w[2, 5] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite value \(first at \[row, col\] = \[2, 5\]\)"):
        quantize(w)


@pytest.mark.parametrize("mode", lowbit.MODES)
def test_quant_linear_on_meta_runs_shape_only(mode):
    q = QuantLinear(128, 40, mode=mode, group_size=32, device="meta", dtype=torch.bfloat16)
    out = q(torch.empty(3, 128, dtype=torch.bfloat16, device="meta"))
    assert out.shape == (3, 40) and out.device.type == "meta"


@pytest.mark.parametrize("mode", lowbit.MODES)
def test_meta_layer_loaded_without_bias_names_the_bias(mode):
    """Built on meta, loaded with strict=False and assign=True from a checkpoint without the bias (issue 11,
    item 3): the bias stays on meta, and forward used to return different garbage each call. It must raise,
    naming the bias and its device; with the bias in the checkpoint the layer works."""
    torch.manual_seed(7)
    real = QuantLinear.from_linear(nn.Linear(64, 24), mode, group_size=32)
    sd = real.state_dict()
    layer = QuantLinear(64, 24, mode=mode, group_size=32, device="meta")
    missing, _ = layer.load_state_dict({k: v for k, v in sd.items() if k != "bias"}, strict=False, assign=True)
    assert missing == ["bias"]
    x = torch.randn(3, 64)
    with pytest.raises(ValueError, match="bias is on meta but the layer's weight is on cpu.*never loaded"):
        layer(x)
    layer.load_state_dict(sd, assign=True)
    assert torch.equal(layer(x), real(x))


@pytest.mark.parametrize("symmetric, method, offsets", [(False, "rtn", False), (True, "rtn", False),
                                                        (False, "rtn", True), (False, "hqq", False),
                                                        (False, "hqq", True)])
def test_int4_scales_are_finite_at_the_edges_of_the_float_range(symmetric, method, offsets):
    """A group holding -3e38 and 3e38 (issue 11, item 7): max - min overflowed, the scale was inf and the output
    column NaN; squared errors (as an error-minimizing method computes them) overflow for weights past about 1e18.
    Groups are scaled by a power of two before quantizing (exact), so every finite weight gets a finite scale (and
    offset): within half a step of each weight (round to nearest; a few steps for hqq, whose l_p fit may leave a
    weight further off), and kernels that agree with the reference. Groups of subnormal weights are quantized too,
    and ordinary groups in the same rows keep their scales."""
    if method == "hqq":
        pytest.importorskip("hqq")
    torch.manual_seed(8)
    w = torch.randn(4, 64)
    w[1, 3], w[1, 7], w[1, 11] = -3e38, 3e38, 1e30
    w[2, :32] *= 1e-40   # subnormal weights
    w[3, 32:] *= 1e20    # squares past float32's range
    packed, s, z = formats.quantize_int4(w, 32, symmetric, method, offsets=offsets)
    if offsets:
        assert torch.isfinite(z).all()
    assert torch.isfinite(s).all() and (s > 0).all()
    ordinary = formats.quantize_int4(w[0:1], 32, symmetric, method, offsets=offsets)[1]
    assert torch.equal(s[0], ordinary[0])
    deq = reference.dequantize_int4(packed, s, z, 32)
    assert torch.isfinite(deq).all()
    step = s.double().repeat_interleave(32, dim=1)
    slack = 0.5 if method == "rtn" else 3.0
    # (offsets: the offset itself rounds to fp32, up to 2^-24 of the group's minimum, 3e38 here)
    assert ((deq - w.double()).abs() <= step * slack * (1 + 1e-6) + 2.0 ** -149 +
            (2.0 ** -23 * w.double().abs().amax() if offsets else 0)).all()

    layer = QuantLinear(64, 4, mode="a16w4", group_size=32, symmetric=symmetric, offsets=offsets)
    layer._pack({"weight": packed, "weight_scale": s, "weight_offset" if offsets else "weight_zero": z})
    x = torch.randn(5, 64) * 1e-3
    out = layer(x)
    assert torch.isfinite(out).all()
    ref = reference.linear_a16w4(x, packed, s, z, 32, dtype=torch.float64)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-30)


def test_int4_rtn_unchanged_for_ordinary_weights():
    """The power-of-two scaling changes no bit for weights of ordinary size: scales by the plain formula."""
    w = torch.randn(16, 128) * 0.05
    packed, s, z = formats.quantize_int4(w, 32)
    g = w.reshape(16, 4, 32)
    lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
    assert torch.equal(s, (hi - lo) / 15)
    assert torch.equal(z, torch.round(-lo / s).clamp(0, 15).to(torch.uint8))


@pytest.mark.parametrize("q, exc, match", [
    (torch.tensor([[17, 0]]), ValueError, r"q must be in 0..15, got values in 0..17"),
    (torch.tensor([[-1, 3]]), ValueError, r"q must be in 0..15, got values in -1..3"),
    (torch.zeros(2, 3, dtype=torch.uint8), ValueError, "even K"),
    (torch.zeros(2, 4, dtype=torch.int8), TypeError, "int8 suggests signed int4"),
    (torch.zeros(2, 4), TypeError, "q must be uint8"),
    (torch.zeros(2, 4, dtype=torch.bool), TypeError, "q must be uint8"),
    (torch.zeros(8, dtype=torch.uint8), ValueError, "2-D"),
    ([[1, 2]], TypeError, "q must be a torch.Tensor"),
])
def test_pack_int4_refuses_what_it_cannot_pack(q, exc, match):
    """Issue 11, item 14: 17 became 1, -1 overwrote its neighbour, K = 3 packed an element twice, int8 passed."""
    with pytest.raises(exc, match=match):
        formats.pack_int4(q)


def test_pack_int4_accepts_wider_integer_types():
    q = torch.randint(0, 16, (3, 10))
    assert torch.equal(formats.pack_int4(q), formats.pack_int4(q.to(torch.uint8)))
    assert torch.equal(formats.unpack_int4(formats.pack_int4(q)), q.to(torch.uint8))


@pytest.mark.parametrize("packed, exc, match", [
    (torch.zeros(2, 4, dtype=torch.int8), TypeError, "packed must be a uint8 tensor"),
    (torch.zeros(2, 4, dtype=torch.int32), TypeError, "packed must be a uint8 tensor"),
    (torch.zeros(4, dtype=torch.uint8), ValueError, "2-D"),
])
def test_unpack_int4_refuses_other_dtypes(packed, exc, match):
    """unpack_int4 of int8 returned negative nibbles (arithmetic shift)."""
    with pytest.raises(exc, match=match):
        formats.unpack_int4(packed)


@pytest.mark.parametrize("shape", ["sequential", "attribute"])
def test_a_linear_used_in_two_places_becomes_one_quantlinear(shape):
    """Issue 11, item 9: only the first use was replaced; the second silently stayed in full precision."""
    torch.manual_seed(9)
    lin = nn.Linear(64, 64)
    if shape == "sequential":
        model = nn.Sequential(lin, nn.ReLU(), lin)
        uses = lambda m: (m[0], m[2])  # noqa: E731
    else:
        model = nn.Module()
        model.a = lin
        model.b = model.a
        uses = lambda m: (m.a, m.b)  # noqa: E731
    lowbit.quantize_(model, "a16w8")
    first, second = uses(model)
    assert isinstance(first, QuantLinear) and second is first
    assert not any(type(m) is nn.Linear for m in model.modules())


def test_shared_linear_inside_shared_parent():
    inner = nn.Linear(32, 32)
    block = nn.Sequential(inner, nn.GELU(), inner)
    model = nn.Sequential(block, block, nn.Linear(32, 8))
    lowbit.quantize_(model, "da8w8")
    assert model[0] is model[1] and model[0][0] is model[0][2] and isinstance(model[0][0], QuantLinear)
    assert isinstance(model[2], QuantLinear)


@pytest.mark.parametrize("mode", lowbit.MODES)
def test_quantize_on_meta_then_load_with_assign(mode):
    """Issue 11, item 10: quantize_ on a model built under torch.device("meta") failed with "Tensor.item() cannot
    be called on meta tensors". It gives QuantLinear layers on meta; load_state_dict(assign=True) fills them."""
    torch.manual_seed(10)
    real = lowbit.quantize_(nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 16, bias=False)), mode,
                            group_size=16)
    with torch.device("meta"):
        skeleton = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 16, bias=False))
    lowbit.quantize_(skeleton, mode, group_size=16)
    assert all(isinstance(skeleton[i], QuantLinear) and skeleton[i].packed_weight.is_meta for i in (0, 2))
    skeleton.load_state_dict(real.state_dict(), assign=True)
    x = torch.randn(3, 64)
    assert torch.equal(skeleton(x), real(x))


@pytest.mark.parametrize("group_size", [3, 0, -2, 2.5, "128", True, 1])
def test_quantize_refuses_an_invalid_group_size(group_size):
    """Issue 11, item 11: group_size=3 raised nothing and kept every layer in full precision."""
    model = nn.Sequential(nn.Linear(64, 64))
    with pytest.raises(ValueError, match="group_size must be None or -1"):
        lowbit.quantize_(model, "a16w4", group_size=group_size)
    assert type(model[0]) is nn.Linear


@pytest.mark.parametrize("group_size", [None, -1, 32])
def test_quantize_accepts_valid_group_sizes(group_size):
    model = lowbit.quantize_(nn.Sequential(nn.Linear(64, 64)), "a16w4", group_size=group_size)
    assert model[0].group_size == (32 if group_size == 32 else 64)


def test_quantize_other_bad_arguments():
    model = nn.Sequential(nn.Linear(64, 64))
    with pytest.raises(TypeError, match="symmetric must be a bool"):
        lowbit.quantize_(model, "a16w4", symmetric="yes")
    with pytest.raises(TypeError, match="filter_fn must be callable"):
        lowbit.quantize_(model, "a16w4", filter_fn="0")


def test_quantize_keeps_hooks_and_logs_skipped_subclasses(caplog):
    """Issue 11, item 12: forward hooks on replaced layers were dropped, nn.Linear subclasses skipped silently."""

    class MyLinear(nn.Linear):
        pass

    model = nn.Sequential(nn.Linear(64, 64), MyLinear(64, 8))
    calls = []
    pre = model[0].register_forward_pre_hook(lambda m, args: calls.append(("pre", type(m).__name__)))
    model[0].register_forward_hook(lambda m, args, out: calls.append(("post", type(m).__name__)))
    model[0].register_forward_hook(lambda m, args, kwargs, out: calls.append(("kw", type(m).__name__)),
                                   with_kwargs=True)
    with caplog.at_level(logging.WARNING, logger="lowbit"):
        lowbit.quantize_(model, "a16w8")
    assert isinstance(model[0], QuantLinear) and type(model[1]) is MyLinear
    assert "keeping 1 as MyLinear" in caplog.text and "subclasses" in caplog.text
    model(torch.randn(2, 64))
    assert calls == [("pre", "QuantLinear"), ("post", "QuantLinear"), ("kw", "QuantLinear")]
    pre.remove()  # the user's handle still works on the moved hook
    calls.clear()
    model(torch.randn(2, 64))
    assert calls == [("post", "QuantLinear"), ("kw", "QuantLinear")]
