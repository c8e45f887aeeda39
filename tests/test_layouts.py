"""lowbit.layouts reads the canonical format back out of every packed layout (native CPU and SYCL), exactly: the
QuantLinear state_dict depends on it. And QuantLinear keeps only the packed layout resident."""

import pytest
import torch
from torch import nn

import lowbit
from helpers import random_int4, random_int4_offsets, random_int8
from lowbit import backends, modes, ops

# N: below, at and past a 16- and a 64-column panel; K: odd and not a multiple of 4 or 8 where a mode allows it
INT8_SHAPES = [(1, 1), (17, 5), (64, 130), (65, 256)]
INT4_SHAPES = [(1, 2, 2), (17, 6, 2), (37, 96, 32), (65, 256, 64), (16, 128, 128)]
BACKENDS = ["native", "sycl"]


def _route(backend):
    if backend == "sycl" and not lowbit.sycl.available():
        pytest.skip(f"SYCL unavailable: {lowbit.sycl.unavailable_reason()} (test_sycl's CI guard covers CI)")
    return lowbit.sycl.route_cpu(backend == "sycl")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["a16w8", "da8w8"])
@pytest.mark.parametrize("n, k", INT8_SHAPES)
def test_int8_round_trip(backend, mode, n, k):
    q, s = random_int8(n, k)
    with _route(backend):
        packed = getattr(ops, f"pack_{mode}")(q, s)
    c = backends.of_packed(packed).unpack(modes.get(mode), packed, n, k)
    assert c.weight.dtype == torch.int8 and torch.equal(c.weight, q)
    assert c.scale.dtype == torch.float32 and torch.equal(c.scale, s) and c.zero is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("n, k, g", INT4_SHAPES)
def test_int4_round_trip(backend, symmetric, n, k, g):
    q, s, z = random_int4(n, k, g, symmetric)
    with _route(backend):
        packed = ops.pack_a16w4(q, s, z, g)
    c = backends.of_packed(packed).unpack(modes.get("a16w4"), packed, n, k, g, symmetric)
    assert c.weight.dtype == torch.uint8 and torch.equal(c.weight, q)
    assert torch.equal(c.scale, s)
    assert (c.zero is None) if symmetric else torch.equal(c.zero, z)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n, k, g", INT4_SHAPES)
def test_int4_float_offsets_round_trip(backend, n, k, g):
    q, s, o = random_int4_offsets(n, k, g)
    with _route(backend):
        packed = ops.pack_a16w4(q, s, o, g)
    c = backends.of_packed(packed).unpack(modes.get("a16w4"), packed, n, k, g, False)
    assert torch.equal(c.weight, q) and torch.equal(c.scale, s) and c.zero is None
    assert c.offset.dtype == torch.float32 and torch.equal(c.offset, o)


def test_sycl_float_offsets_are_checked():
    if not lowbit.sycl.available():
        pytest.skip(f"SYCL unavailable: {lowbit.sycl.unavailable_reason()}")
    q, s, o = random_int4_offsets(16, 64, 32)
    with pytest.raises(RuntimeError, match="float32 offsets\\) must be finite"):
        torch.ops.lowbit_sycl.pack_a16w4(q, s, torch.full_like(o, float("nan")), 32)
    with pytest.raises(RuntimeError, match="float32 offsets\\) must be finite"):
        torch.ops.lowbit_sycl.pack_a16w4(q, s, torch.full_like(o, float("-inf")), 32)


def test_unpack_works_on_meta():
    packed = ops.pack_a16w4(torch.empty(80, 64, dtype=torch.uint8, device="meta"),
                            torch.empty(80, 4, device="meta"), torch.empty(80, 4, dtype=torch.uint8, device="meta"), 32)
    c = backends.CPU.unpack(modes.get("a16w4"), packed, 80, 128, 32, False)
    assert [t.shape for t in c if t is not None] == [(80, 64), (80, 4), (80, 4)] and c.weight.device.type == "meta"


# ---- QuantLinear holds the packed layout only

def _resident_bytes(module):
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


@pytest.mark.parametrize("mode", ["a16w8", "a16w4", "da8w8"])
def test_quant_linear_holds_only_the_packed_layout(mode):
    lin = nn.Linear(512, 256, bias=False)
    layer = lowbit.QuantLinear.from_linear(lin, mode, group_size=128)
    assert [name for name, _ in layer.named_buffers()] == ["packed_weight"] and not list(layer.parameters())
    saved = sum(t.numel() * t.element_size() for t in layer.state_dict().values())
    # the layout adds only per-column fields: fp32 zero points instead of uint8 (a16w4), int32 column sums (da8w8)
    assert saved <= _resident_bytes(layer) <= saved * {"a16w8": 1.0, "a16w4": 1.13, "da8w8": 1.01}[mode]


@pytest.mark.parametrize("mode", ["a16w8", "a16w4", "da8w8"])
def test_attributes_and_state_dict_are_what_the_quantizer_made(mode):
    from lowbit import formats
    lin = nn.Linear(96, 40)
    layer = lowbit.QuantLinear.from_linear(lin, mode, group_size=32)
    made = (formats.quantize_int4(lin.weight.detach(), 32) if mode == "a16w4"
            else (*formats.quantize_int8(lin.weight.detach()), None))
    sd = layer.state_dict()
    for name, expected in zip(("weight", "weight_scale", "weight_zero"), made):
        assert torch.equal(getattr(layer, name), expected) if expected is not None else name not in sd
        if expected is not None:
            assert torch.equal(sd[name], expected)


def test_load_errors_name_the_key_and_what_was_expected():
    layer = lowbit.QuantLinear(96, 40, mode="a16w4", group_size=32)
    sd = layer.state_dict()
    with pytest.raises(RuntimeError, match=r"size mismatch for weight_scale: .*\[40, 2\].*\[40, 3\]"):
        layer.load_state_dict({**sd, "weight_scale": torch.ones(40, 2)})
    with pytest.raises(RuntimeError, match=r"dtype mismatch for weight: the checkpoint holds torch.int8, a16w4 "
                                           r"needs torch.uint8"):
        layer.load_state_dict({**sd, "weight": sd["weight"].to(torch.int8)})
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: \"weight_zero\""):
        layer.load_state_dict({k: v for k, v in sd.items() if k != "weight_zero"})
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: \"weight_zero\""):
        lowbit.QuantLinear(96, 40, mode="a16w4", group_size=32, symmetric=True).load_state_dict(sd)
    with pytest.raises(ValueError, match="zeros must be in 0..15"):
        layer.load_state_dict({**sd, "weight_zero": torch.full((40, 3), 16, dtype=torch.uint8)})


def test_partial_load_keeps_the_rest():
    src = lowbit.QuantLinear.from_linear(nn.Linear(96, 40), "a16w4", group_size=32)
    dst = lowbit.QuantLinear.from_linear(nn.Linear(96, 40), "a16w4", group_size=32)
    before = dst.state_dict()
    result = dst.load_state_dict({"weight_scale": src.weight_scale}, strict=False)
    assert set(result.missing_keys) == {"weight", "weight_zero", "bias"} and not result.unexpected_keys
    after = dst.state_dict()
    assert torch.equal(after["weight_scale"], src.weight_scale)
    assert all(torch.equal(after[k], before[k]) for k in ("weight", "weight_zero", "bias"))


def test_assign_load_onto_a_meta_model():
    src = lowbit.QuantLinear.from_linear(nn.Linear(96, 40), "a16w8")
    with torch.device("meta"):
        dst = lowbit.QuantLinear(96, 40, mode="a16w8")
    dst.load_state_dict(src.state_dict(), assign=True)
    x = torch.randn(3, 96)
    assert dst.packed_weight.device.type == "cpu" and torch.equal(dst(x), src(x))
