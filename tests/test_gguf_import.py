"""lowbit.load_gguf_ on small GGUF files written here with gguf's own writer and quantizer (GGUFWriter,
gguf.quants.quantize): a tiny Llama (random weights) whose linears are stored Q4_1, Q4_0, Q8_0 and F32, with the
attention q/k rows permuted as llama.cpp's converter stores them. The model's float weights are set to gguf's
dequantization (what transformers' GGUF loader gives), then the import must give back exactly those weights from the
file's integers. The real file is tested in tests/test_real_model.py."""

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

import lowbit  # noqa: E402
from lowbit import gguf_import  # noqa: E402
from lowbit.nn import QuantLinear  # noqa: E402

HIDDEN, HEADS, KV_HEADS, LAYERS, FFN, VOCAB = 64, 4, 2, 2, 96, 128


def _llamacpp_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py stores q/k rows of each head with the two rotary halves interleaved."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                         num_hidden_layers=LAYERS, intermediate_size=FFN, vocab_size=VOCAB, tie_word_embeddings=False)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


# GGUF name of each linear, its type in the file
def _types(kind_blocks: str):
    out = {}
    for i in range(LAYERS):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
            out[f"blk.{i}.{part}.weight"] = kind_blocks
    return out


def _write(model, path, types, output_type="Q8_0"):
    """Writes `model`'s weights to a GGUF at `path` (llama architecture) and sets the model's float weights to
    gguf's dequantization of what was written. Returns {gguf name: hf parameter name}."""
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, get_gguf_hf_weights_map
    names = get_gguf_hf_weights_map(model, TENSOR_PROCESSORS["llama"](config=model.config.to_dict()))
    names = {g: hf for g, hf in names.items() if hf in dict(model.named_parameters())}
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(LAYERS)
    params = dict(model.named_parameters())
    dequantized = {}
    for g, hf in sorted(names.items()):
        w = params[hf].detach().float().numpy()
        kind = types.get(g, output_type if g == "output.weight" else "F32")
        stored = w
        if ".attn_q." in g:
            stored = _llamacpp_permute(w, HEADS)
        elif ".attn_k." in g:
            stored = _llamacpp_permute(w, KV_HEADS)
        qtype = getattr(gguf.GGMLQuantizationType, kind)
        data = stored if kind == "F32" else gguf.quants.quantize(stored, qtype)
        writer.add_tensor(g, data, raw_dtype=qtype if kind != "F32" else None)
        back = stored if kind == "F32" else gguf.quants.dequantize(data, qtype)
        # what the model gets: the file's values, with the q/k rows put back as transformers does
        order = gguf_import._row_order(TENSOR_PROCESSORS["llama"](config=model.config.to_dict()), g, w.shape[0]) \
            if w.ndim == 2 else np.arange(w.shape[0])
        dequantized[hf] = np.asarray(back, dtype=np.float32)[order]
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with torch.no_grad():
        for hf, w in dequantized.items():
            params[hf].copy_(torch.from_numpy(w))
    return names


@pytest.mark.parametrize("kind", ["Q4_1", "Q4_0"])
def test_import_is_exact(kind, tmp_path):
    model = _tiny_llama()
    path = tmp_path / f"tiny-{kind}.gguf"
    _write(model, path, _types(kind))
    x = torch.randint(0, VOCAB, (2, 9))
    with torch.no_grad():
        want = model(x).logits
    weights = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    report = lowbit.load_gguf_(model, str(path))
    imported = [r for r in report.values() if r.action == "imported"]
    assert len(imported) == 7 * LAYERS and all(r.gguf_type == kind and r.group_size == 32 for r in imported)
    assert report["lm_head"].action == "kept" and report["lm_head"].gguf_type == "Q8_0"
    for r in imported:
        layer = model.get_submodule(r.module)
        assert isinstance(layer, QuantLinear) and layer.offsets == (kind == "Q4_1")
        assert layer.symmetric == (kind == "Q4_0")
        # the layer's weight is the file's dequantization (the float model's), to within fp32 rounding of s*q+o
        w = weights[r.module]
        assert (layer.dequantized_weight() - w).abs().max() <= 2 ** -23 * w.abs().max()
        assert r.error <= 2 ** -23
    with torch.no_grad():
        got = model(x).logits
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()


def test_other_types_kept_or_quantized_with_the_error_reported(tmp_path):
    model = _tiny_llama()
    path = tmp_path / "tiny-mixed.gguf"
    types = _types("Q4_1")
    types["blk.0.ffn_down.weight"] = "Q8_0"
    types["blk.1.attn_v.weight"] = "F32"
    _write(model, path, types)
    kept = lowbit.load_gguf_(_copy(model), str(path))
    assert kept["model.layers.0.mlp.down_proj"].action == "kept"
    assert kept["model.layers.1.self_attn.v_proj"].action == "kept"
    quantized = lowbit.load_gguf_(model, str(path), others="quantize")
    r = quantized["model.layers.0.mlp.down_proj"]
    assert r.action == "quantized" and r.mode == "a16w8" and 0 < r.error < 0.01
    assert isinstance(model.model.layers[0].mlp.down_proj, QuantLinear)
    assert quantized["model.layers.1.self_attn.v_proj"].action == "kept"  # F32: nothing nearer
    assert quantized["lm_head"].action == "quantized" and quantized["lm_head"].gguf_type == "Q8_0"
    assert "imported" in gguf_import.summary(quantized)


def test_a_file_of_another_model_is_refused(tmp_path):
    model = _tiny_llama()
    path = tmp_path / "tiny.gguf"
    _write(model, path, _types("Q4_1"))
    from transformers import LlamaConfig, LlamaForCausalLM
    other = LlamaForCausalLM(LlamaConfig(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                         num_hidden_layers=LAYERS, intermediate_size=FFN * 2, vocab_size=VOCAB))
    with pytest.raises(ValueError, match="is this the file the model was loaded from"):
        lowbit.load_gguf_(other, str(path))
    with pytest.raises(ValueError, match="others"):
        lowbit.load_gguf_(model, str(path), others="drop")


def _copy(model):
    import copy
    return copy.deepcopy(model)
