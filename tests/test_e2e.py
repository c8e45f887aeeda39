"""The decode benchmark and the PyTorch peers, on a small LlamaForCausalLM (same code path as Llama-3.1-8B dims)."""

import copy
import logging

import pytest
import torch
from torch import nn

from lowbit import e2e, formats, peers, quantize_, reference
from lowbit.nn import QuantLinear

SMALL = dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2)
LAYERS, VOCAB = 2, 512
# a peer and the lowbit layer it stands beside multiply by the same integers: only summation order differs
SAME_WEIGHTS_COSINE = 0.9999


@pytest.fixture(scope="module")
def llama():
    return e2e.build_llama(e2e.llama_config(LAYERS, VOCAB, **SMALL))


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=-1).min().item()


@pytest.mark.parametrize("kind,mode", [("torch-int4", "a16w4"), ("torch-int8", "a16w8"), ("torch-da8w8", "da8w8")])
def test_peer_matches_reference(kind, mode):
    linear = nn.Linear(256, 64).bfloat16()
    x = torch.randn(3, 5, 256, dtype=torch.bfloat16)
    peer = peers.swap_linears(nn.Sequential(linear), kind)[0]
    if mode == "a16w4":
        w, s, z = formats.quantize_int4(linear.weight, 128)
        ref = reference.linear_a16w4(x, w, s, z, 128, linear.bias, dtype=torch.float64)
    else:
        q, s = formats.quantize_int8(linear.weight)
        fn = reference.linear_a16w8 if mode == "a16w8" else reference.linear_da8w8
        ref = fn(x, q, s, linear.bias, dtype=torch.float64)
    # bf16 output: one rounding of the result plus bf16 scales/zeros inside torch's ops
    torch.testing.assert_close(peer(x).double(), ref, rtol=2 ** -6, atol=2 ** -6 * ref.abs().max().item())


def test_peer_refuses_shapes_its_op_cannot_take(caplog):
    model = nn.Sequential(nn.Linear(256, 40))  # N = 40 is not a multiple of 16
    with caplog.at_level(logging.WARNING, logger="lowbit"):
        peers.swap_linears(model, "torch-int4")
    assert type(model[0]) is nn.Linear and "multiple of 16" in caplog.text
    with pytest.raises(ValueError, match="kind must be one of"):
        peers.swap_linears(model, "torch-int3")


def test_variants_compute_the_same_model(llama):
    ids = torch.randint(0, VOCAB, (2, 5))
    base = logits(llama, ids)
    outs = {name: logits(e2e.make_variant(llama, name), ids) for name in e2e.VARIANTS}
    for name, out in outs.items():
        assert cosine(out, base) > 0.95, name  # int4 of random weights is the loosest
    for lowbit_name, peer_name in (("lowbit-a16w4", "torch-int4"), ("lowbit-a16w8", "torch-int8"),
                                   ("lowbit-da8w8", "torch-da8w8")):
        assert cosine(outs[lowbit_name], outs[peer_name]) > SAME_WEIGHTS_COSINE, lowbit_name
    assert all(isinstance(m, nn.Linear) for m in llama.modules() if peers.is_linear(m)), "base was modified"


def test_run_reports_every_variant_and_batch():
    results = e2e.run(batches=(1, 3), layers=1, vocab=VOCAB, context=8, steps=3, rounds=1, dims=SMALL)
    assert [(r.variant, r.batch) for r in results] == [(v, b) for b in (1, 3) for v in e2e.VARIANTS]
    for r in results:
        assert r.ms_per_token > 0 and len(r.steps) == 2  # 3 steps, the first one not counted
        assert r.tokens_per_s == pytest.approx(r.batch * 1e3 / r.ms_per_token)
        assert 0 < r.linear_share < 1
        assert r.logits_cosine > 0.95
    saved = {r.variant: r.saved_bytes for r in results if r.batch == 1}
    assert saved["lowbit-a16w4"] < saved["lowbit-a16w8"] < saved["bf16"]
    assert saved["lowbit-a16w8"] == saved["lowbit-da8w8"]


def test_quantize_skips_layers_a_mode_cannot_take(caplog):
    # intermediate 320: down_proj's in_features is not divisible by group_size 128
    model = e2e.build_llama(e2e.llama_config(1, VOCAB, **{**SMALL, "intermediate_size": 320}))
    with caplog.at_level(logging.WARNING, logger="lowbit"):
        quantize_(model, "a16w4", group_size=128)
    down = model.model.layers[0].mlp.down_proj
    assert type(down) is nn.Linear and "down_proj" in caplog.text and "divisible" in caplog.text
    assert isinstance(model.model.layers[0].mlp.up_proj, QuantLinear)


@pytest.mark.parametrize("mode,method", [("a16w8", "rtn"), ("a16w4", "rtn"), ("a16w4", "hqq"), ("da8w8", "rtn")])
def test_quantized_llama_reloads_bit_identical(llama, tmp_path, mode, method):
    from safetensors.torch import load_file, save_file
    model = quantize_(copy.deepcopy(llama), mode, method=method)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    fresh = quantize_(e2e.build_llama(llama.config, seed=1), mode)  # other weights, same structure
    fresh.load_state_dict(load_file(tmp_path / "model.safetensors"))
    ids = torch.randint(0, VOCAB, (2, 5))
    assert torch.equal(logits(model, ids), logits(fresh, ids))
