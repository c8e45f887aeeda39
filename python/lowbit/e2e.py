"""End-to-end greedy decode latency of a Llama-architecture decoder: bf16 vs lowbit vs PyTorch's own int4/int8 ops.

The model is `transformers.LlamaForCausalLM` built from a LlamaConfig with Llama-3.1-8B layer dimensions and a few
layers, random weights, nothing downloaded. Every variant is a copy of the same bf16 model with every nn.Linear
(lm_head included) swapped: for lowbit.quantize_ in one mode, or for a PyTorch peer (lowbit.peers) built from the same
integers. Per-token latency is what a decode step costs with a KV cache, so:

- The cache is pre-filled with `context` positions of random keys and values, identical for every variant: with
  random weights their content changes nothing, and it spares a prefill that costs more than the whole measurement.
- Variants are timed interleaved, round after round, in one process (the machine is shared and noisy, so only
  ratios measured side by side mean anything); each run's first step is a warm-up and is not counted.
- With torch.compile (dynamic shapes), each model first decodes once untimed: compilation and the recompilations
  for the growing cache happen there.
- The linear layers' share of a step is timed by forward hooks around every linear module (eager only; the hooks
  cost microseconds against steps of milliseconds).
"""

import copy
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from lowbit import modes, peers
from lowbit.quantize import quantize_

# Llama-3.1-8B's layer dimensions (its config.json); the layer count and vocabulary are the benchmark's choice.
LLAMA_3_1_8B = dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                    rms_norm_eps=1e-5, rope_theta=500000.0)
DEFAULT_LAYERS = 2
DEFAULT_VOCAB = 32000
LOWBIT_VARIANTS = tuple(f"lowbit-{name}" for name in modes.NAMES)
BASELINE = "bf16"
VARIANTS = (BASELINE,) + peers.PEERS + LOWBIT_VARIANTS
# which peer each lowbit mode is measured against: PyTorch's op of the same weight width (int4 vs int4, int8 vs int8)
PEER_OF = {f"lowbit-{name}": "torch-int4" if modes.get(name).grouped else "torch-int8" for name in modes.NAMES}


@dataclass
class Result:
    variant: str
    batch: int
    compiled: bool
    ms_per_token: float          # median decode step (one token for each sequence of the batch)
    tokens_per_s: float          # batch * 1000 / ms_per_token
    linear_share: Optional[float]  # fraction of the step spent inside linear layers (eager only)
    weight_bytes: int            # linear layers' tensors as held in memory (deduplicated)
    saved_bytes: int             # linear layers' tensors in the state_dict (what a checkpoint holds)
    logits_cosine: float         # first decode step's logits vs bf16's, a check that the swap kept the model
    steps: List[float] = field(default_factory=list)  # every counted step, ms

    def as_dict(self) -> dict:
        return asdict(self)


def llama_config(layers: int = DEFAULT_LAYERS, vocab: int = DEFAULT_VOCAB, **dims):
    """A LlamaConfig with Llama-3.1-8B's layer dimensions unless `dims` overrides them (tests use small ones)."""
    from transformers import LlamaConfig
    return LlamaConfig(**{**LLAMA_3_1_8B, **dims}, num_hidden_layers=layers, vocab_size=vocab,
                       tie_word_embeddings=False)


def build_llama(config, dtype: torch.dtype = torch.bfloat16, seed: int = 0) -> nn.Module:
    """LlamaForCausalLM with random weights in `dtype`, constructed directly in that dtype (half the memory)."""
    from transformers import LlamaForCausalLM
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(previous)


def make_variant(base: nn.Module, name: str, group_size: int = 128, method: str = "rtn") -> nn.Module:
    """A copy of `base` with every linear swapped for variant `name` (one of VARIANTS); `base` is untouched."""
    if name not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {name!r}")
    if name == BASELINE:
        return base
    model = copy.deepcopy(base)
    if name in peers.PEERS:
        return peers.swap_linears(model, name, group_size)
    return quantize_(model, name.split("-", 1)[1], group_size=group_size, method=method)


def linear_bytes(model: nn.Module, saved: bool = False) -> int:
    """Bytes of the linear layers' tensors: as held in memory (every buffer, once per storage), or as saved."""
    tensors = []  # all kept alive until counted: a freed temporary's address may be reused by the next one
    for module in model.modules():
        if peers.is_linear(module):
            tensors += module.state_dict().values() if saved else [*module.parameters(), *module.buffers()]
    seen, total = set(), 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


class LinearTimer:
    """Wall time inside linear modules, via forward pre/post hooks (nested linears are not expected)."""

    def __init__(self, model: nn.Module):
        self.seconds = 0.0
        self._start = 0.0
        self._handles = []
        for module in model.modules():
            if peers.is_linear(module):
                self._handles.append(module.register_forward_pre_hook(self._enter))
                self._handles.append(module.register_forward_hook(self._exit))

    def _enter(self, module, args):
        self._start = time.perf_counter()

    def _exit(self, module, args, output):
        self.seconds += time.perf_counter() - self._start

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def random_cache(config, batch: int, context: int, dtype: torch.dtype, seed: int = 0):
    """A DynamicCache holding `context` positions of random keys and values for every layer."""
    from transformers import DynamicCache
    gen = torch.Generator().manual_seed(seed)
    head_dim = config.hidden_size // config.num_attention_heads
    cache = DynamicCache(config=config)
    shape = (batch, config.num_key_value_heads, context, head_dim)
    for layer in range(config.num_hidden_layers):
        cache.update(torch.randn(shape, generator=gen).to(dtype), torch.randn(shape, generator=gen).to(dtype), layer)
    return cache


class Decoder:
    """Greedy decode of one variant from a shared starting state, timing each step."""

    def __init__(self, model: nn.Module, compiled: bool):
        self.model = model
        self.forward = torch.compile(model.forward, dynamic=True) if compiled else model.forward
        self.timer = None if compiled else LinearTimer(model)

    @torch.no_grad()
    def run(self, first_token: torch.Tensor, cache, steps: int):
        """-> (step times in s, linear seconds per step, first step's logits)."""
        token, times, linear, first_logits = first_token, [], [], None
        for _ in range(steps):
            if self.timer is not None:
                self.timer.seconds = 0.0
            t0 = time.perf_counter()
            logits = self.forward(input_ids=token, cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
            token = logits.argmax(-1, keepdim=True)
            times.append(time.perf_counter() - t0)
            linear.append(self.timer.seconds if self.timer is not None else float("nan"))
            if first_logits is None:
                first_logits = logits.float()
        return times, linear, first_logits


def run(variants: Sequence[str] = VARIANTS, batches: Sequence[int] = (1, 8), layers: int = DEFAULT_LAYERS,
        vocab: int = DEFAULT_VOCAB, context: int = 128, steps: int = 4, rounds: int = 2, compiled: bool = False,
        group_size: int = 128, method: str = "rtn", threads: Optional[int] = None, dims: Optional[dict] = None,
        progress: bool = False, log: Callable[[str], None] = lambda s: None) -> List[Result]:
    """Build the model, make each variant, and time greedy decode for every (variant, batch). See module doc."""
    if threads is not None:
        torch.set_num_threads(threads)
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (the first step of each run is a warm-up), got {steps}")
    if BASELINE not in variants:
        variants = (BASELINE,) + tuple(variants)  # the logits check and the speed-ups are relative to it
    config = llama_config(layers, vocab, **(dims or {}))
    log(f"building LlamaForCausalLM: {layers} layers, hidden {config.hidden_size}, "
        f"intermediate {config.intermediate_size}, vocab {vocab}, bf16, random weights")
    base = build_llama(config)
    bar = _progress(progress, total=len(variants), desc="quantize", unit="variant")
    models: Dict[str, nn.Module] = {}
    for name in variants:
        bar.set_postfix_str(name)
        models[name] = make_variant(base, name, group_size, method)
        bar.update()
    bar.close()
    if compiled:
        # Every variant is the same class, so dynamo caches all of their graphs on one code object
        # (LlamaForCausalLM.forward), guarded on the linear modules' types; past the default limit of 8 the later
        # variants would silently run eager.
        import torch._dynamo.config as dynamo_config
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 8 * len(models) * len(batches))
        dynamo_config.accumulated_recompile_limit = max(dynamo_config.accumulated_recompile_limit,
                                                        dynamo_config.recompile_limit * 4)
    decoders = {name: Decoder(m, compiled) for name, m in models.items()}
    results = []
    bar = _progress(progress, total=len(batches) * rounds * len(variants), desc="decode", unit="run")
    for batch in batches:
        gen = torch.Generator().manual_seed(batch)
        first = torch.randint(0, vocab, (batch, 1), generator=gen)
        start = random_cache(config, batch, context, torch.bfloat16, seed=batch)
        times = {n: [] for n in variants}
        linear = {n: [] for n in variants}
        logits = {}
        if compiled:  # compilation, and recompilation as the cache grows, happen in an untimed run
            for name in variants:
                bar.set_postfix_str(f"batch {batch} {name} (compiling)")
                decoders[name].run(first, copy.deepcopy(start), steps)
        for _ in range(rounds):
            for name in variants:  # interleaved: every variant once per round
                bar.set_postfix_str(f"batch {batch} {name}")
                t, lin, first_logits = decoders[name].run(first, copy.deepcopy(start), steps)
                times[name] += t[1:]
                linear[name] += lin[1:]
                logits.setdefault(name, first_logits)
                bar.update()
        for name in variants:
            ms = statistics.median(times[name]) * 1e3
            share = statistics.median(li / ti for li, ti in zip(linear[name], times[name])) if not compiled else None
            cos = torch.nn.functional.cosine_similarity(logits[name], logits[BASELINE], dim=-1).mean().item()
            results.append(Result(name, batch, compiled, ms, batch * 1e3 / ms, share, linear_bytes(models[name]),
                                  linear_bytes(models[name], saved=True), cos, [t * 1e3 for t in times[name]]))
    bar.close()
    return results


def _progress(enabled: bool, **kwargs):
    from tqdm import tqdm
    return tqdm(disable=not enabled, leave=False, **kwargs)
