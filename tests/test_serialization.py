"""The state_dict holds the canonical format; saving and loading round-trips bit for bit."""

import io

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import lowbit
from lowbit import modes


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 80), nn.ReLU(), nn.Linear(80, 33)).to(torch.bfloat16)


# every mode (lowbit.modes); int4 modes at two group sizes, symmetric and per channel (80 = K of the second layer,
# a multiple of 8 as da8w4's per-channel groups need)
CONFIGS = [c for mode in lowbit.MODES for c in (
    [(mode, 64, False), (mode, 32, True), (mode, None, False)] if modes.get(mode).grouped else [(mode, 128, False)])]


@pytest.mark.parametrize("mode, group_size, symmetric", CONFIGS)
def test_state_dict_is_canonical(mode, group_size, symmetric):
    q = lowbit.quantize_(_model(), mode, group_size=group_size, symmetric=symmetric)
    sd = q.state_dict()
    assert "0.packed_weight" not in sd
    if modes.get(mode).grouped:
        assert sd["0.weight"].dtype == torch.uint8 and sd["0.weight"].shape == (80, 128)
        assert ("0.weight_zero" in sd) == (not symmetric)
    else:
        assert sd["0.weight"].dtype == torch.int8 and sd["0.weight"].shape == (80, 256)
    assert sd["0.weight_scale"].dtype == torch.float32


@pytest.mark.parametrize("mode, group_size, symmetric", CONFIGS)
@pytest.mark.parametrize("via", ["torch.save", "safetensors"])
def test_reload_gives_bit_identical_outputs(mode, group_size, symmetric, via, tmp_path):
    q = lowbit.quantize_(_model(), mode, group_size=group_size, symmetric=symmetric)
    x = torch.randn(4, 256, dtype=torch.bfloat16)
    with torch.no_grad():
        expected = q(x)
    if via == "torch.save":
        buf = io.BytesIO()
        torch.save(q.state_dict(), buf)
        buf.seek(0)
        sd = torch.load(buf)
    else:
        save_file(q.state_dict(), tmp_path / "m.safetensors")
        sd = load_file(tmp_path / "m.safetensors")
    # a fresh model quantized with other data, then overwritten by the loaded state
    fresh = lowbit.quantize_(nn.Sequential(nn.Linear(256, 80), nn.ReLU(), nn.Linear(80, 33)).to(torch.bfloat16),
                             mode, group_size=group_size, symmetric=symmetric)
    fresh.load_state_dict(sd)
    for a, b in zip(q.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("via", ["torch.save", "safetensors"])
def test_float_offsets_state_dict_and_reload(via, tmp_path):
    """a16w4 with float offsets: the state_dict holds weight_offset (float32), no weight_zero, and reloads bit for bit."""
    q = lowbit.quantize_(_model(), "a16w4", group_size=32, offsets=True)
    sd = q.state_dict()
    assert sd["0.weight_offset"].dtype == torch.float32 and sd["0.weight_offset"].shape == (80, 8)
    assert "0.weight_zero" not in sd
    x = torch.randn(4, 256, dtype=torch.bfloat16)
    with torch.no_grad():
        want = q(x)
    fresh = lowbit.quantize_(_model(), "a16w4", group_size=32, offsets=True)
    if via == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "m.safetensors")
        fresh.load_state_dict(load_file(tmp_path / "m.safetensors"))
    else:
        buf = io.BytesIO()
        torch.save(sd, buf)
        buf.seek(0)
        fresh.load_state_dict(torch.load(buf))
    with torch.no_grad():
        assert torch.equal(fresh(x), want)
    for name in ("weight", "weight_scale", "weight_offset"):
        assert torch.equal(getattr(fresh[0], name), getattr(q[0], name))
