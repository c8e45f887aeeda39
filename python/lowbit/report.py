"""Plain-text tables of the end-to-end and accuracy results, and the machine line printed beside every number."""

import os
import platform
from typing import Dict, List, Optional, Sequence

import torch

from lowbit.accuracy import Accuracy
from lowbit.e2e import BASELINE, PEER_OF, Result

MIB = float(1 << 20)


def machine() -> Dict[str, str]:
    """What the numbers were measured on: they mean nothing without it."""
    import lowbit
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # the load average says how much the (often shared) machine was doing besides: read numbers in its light
    return {"cpu": cpu, "cores": str(os.cpu_count()), "threads": str(torch.get_num_threads()),
            "load": f"{os.getloadavg()[0]:.1f}", "lowbit": lowbit.__version__, "kernels": lowbit.cpu_isa(),
            "torch": torch.__version__}


def machine_line(info: Optional[Dict[str, str]] = None) -> str:
    m = info or machine()
    load = f", load {m['load']} at start" if "load" in m else ""
    return (f"{m['cpu']} ({m['cores']} cores{load}), {m['threads']} threads | lowbit {m['lowbit']} "
            f"({m['kernels']} kernels) | torch {m['torch']}")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Markdown table (readable in a terminal, pasteable into README): names left, numbers right."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def _ratio(num: float, den: float) -> str:
    return f"{num / den:.2f}x" if den > 0 else "-"


def e2e_table(results: List[Result]) -> str:
    """One row per (variant, batch): latency, throughput, speed-up vs bf16 and vs the matching PyTorch op."""
    by = {(r.variant, r.batch): r for r in results}
    rows = []
    for r in results:
        base = by.get((BASELINE, r.batch))
        peer = by.get((PEER_OF.get(r.variant, ""), r.batch))
        rows.append([r.variant, r.batch, f"{r.ms_per_token:.1f}", f"{r.tokens_per_s:.1f}",
                     _ratio(base.ms_per_token, r.ms_per_token) if base else "-",
                     f"{_ratio(peer.ms_per_token, r.ms_per_token)} {peer.variant}" if peer else "",
                     "-" if r.linear_share is None else f"{100 * r.linear_share:.0f}%",
                     f"{r.weight_bytes / MIB:.0f}", f"{r.saved_bytes / MIB:.0f}", f"{r.logits_cosine:.4f}"])
    return table(["model", "batch", "ms/token", "tokens/s", "vs bf16", "vs PyTorch op", "in linears",
                  "weights MiB (memory)", "weights MiB (saved)", "logits cos"], rows)


def accuracy_table(results: List[Accuracy], with_time: bool = True) -> str:
    rows = [[a.label, f"{a.cosine_mean:.4f}", f"{a.cosine_min:.4f}", f"{a.top1_agreement:.2f}",
             f"{a.rank_correlation:.3f}"] + ([f"{a.quantize_seconds:.1f}"] if with_time else []) for a in results]
    return table(["mode", "cosine mean", "cosine min", "top-1 same", "rank corr."]
                 + (["quantize s"] if with_time else []), rows)


def main_table(results: List[Result], accuracy: Dict[str, Accuracy], batches: Sequence[int]) -> str:
    """The main job: one row per model, the decode latency at each batch, memory, and MiniLM accuracy."""
    by = {(r.variant, r.batch): r for r in results}
    variants = list(dict.fromkeys(r.variant for r in results))
    header = ["model"]
    for b in batches:
        header += [f"ms/token b={b}", f"tok/s b={b}", f"vs bf16 b={b}"]
    header += ["weights MiB (in memory)", "MiniLM cosine", "MiniLM top-1"]
    rows = []
    for v in variants:
        row = [v]
        for b in batches:
            r, base = by[(v, b)], by[(BASELINE, b)]
            row += [f"{r.ms_per_token:.1f}", f"{r.tokens_per_s:.1f}", _ratio(base.ms_per_token, r.ms_per_token)]
        acc = accuracy.get(v)
        row += [f"{by[(v, batches[0])].weight_bytes / MIB:.0f}",
                f"{acc.cosine_mean:.4f}" if acc else "-", f"{acc.top1_agreement:.2f}" if acc else "-"]
        rows.append(row)
    return table(header, rows)
