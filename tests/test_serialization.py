"""The state_dict holds the canonical format; saving and loading round-trips bit for bit."""

import io

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import lowbit


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 80), nn.ReLU(), nn.Linear(80, 33)).to(torch.bfloat16)


CONFIGS = [("a16w8", 128, False), ("da8w8", 128, False), ("a16w4", 64, False), ("a16w4", 32, True),
           ("a16w4", None, False)]


@pytest.mark.parametrize("mode, group_size, symmetric", CONFIGS)
def test_state_dict_is_canonical(mode, group_size, symmetric):
    q = lowbit.quantize_(_model(), mode, group_size=group_size, symmetric=symmetric)
    sd = q.state_dict()
    assert "0.packed_weight" not in sd
    if mode == "a16w4":
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
