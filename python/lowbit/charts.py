"""PNG chart of end-to-end decode latency per token, by model and batch (matplotlib, no display needed)."""

from pathlib import Path
from typing import Dict, List, Optional

from lowbit.e2e import Result
from lowbit.report import machine_line

# PyTorch's ops in greys, lowbit in one hue per mode, so the pairs to compare read at a glance
COLORS = {"bf16": "#4d4d4d", "torch-int4": "#8c8c8c", "torch-int8": "#b3b3b3", "torch-da8w8": "#d9d9d9",
          "lowbit-a16w4": "#1b7837", "lowbit-a16w8": "#2166ac", "lowbit-da8w8": "#b2182b"}


def latency_chart(results: List[Result], path, title: str, machine: Optional[Dict[str, str]] = None) -> Path:
    """Grouped bars: one group per batch size, one bar per model, log-scaled ms per token, labelled with values."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({r.batch for r in results})
    variants = list(dict.fromkeys(r.variant for r in results))
    by = {(r.variant, r.batch): r for r in results}
    width = 0.8 / len(variants)
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(batches) * len(variants) / 4, 4.8))
    for i, v in enumerate(variants):
        xs = [b_i + (i - (len(variants) - 1) / 2) * width for b_i in range(len(batches))]
        ys = [by[(v, b)].ms_per_token if (v, b) in by else float("nan") for b in batches]
        bars = ax.bar(xs, ys, width, label=v, color=COLORS.get(v), edgecolor="black", linewidth=0.4)
        ax.bar_label(bars, labels=[f"{y:.0f}" if y == y else "" for y in ys], fontsize=7, padding=1)
    ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
    ax.set_yscale("log")
    ax.set_ylabel("ms per decode step (lower is better)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=2, frameon=False)
    fig.text(0.01, 0.01, machine_line(machine), fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
