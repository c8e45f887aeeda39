"""Kernel benchmark: every lowbit mode (lowbit.modes) against PyTorch's own CPU ops, timed in one process, interleaved.

    python -m lowbit bench                    # Llama-3.1-8B shapes, M in 1 8 32 128, bf16, all threads
    python -m lowbit bench --m 1 8 --dtypes bf16 fp16 fp32 --threads 1 2 --out benchmarks/results

Fairness rules (docs/benchmarks.md): every op reads a different copy of its weights on each call, from a
set larger than 4x the L3 cache, so decode timings measure DRAM like a real model does; ops are interleaved
rep by rep so machine noise hits all of them alike; medians are reported, and ratios are the point.
"""

import argparse
import csv
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

import lowbit
from lowbit import formats, ops
from lowbit import modes as mode_table

SHAPES = [(4096, 4096), (4096, 14336), (14336, 4096)]  # (K, N) of Llama-3.1-8B's projections
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
PEER_OF = {name: mode_table.get(name).peer for name in mode_table.NAMES}
GROUP_SIZE = 128


# ------------------------------------------------------------------ machine facts

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def l3_bytes() -> int:
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text().strip()
        return int(text[:-1]) * 1024 if text.endswith("K") else int(text)
    except (OSError, ValueError):
        return 32 << 20


def read_bandwidth_gbs(reps: int = 5) -> float:
    """Best-of-reps sum over 1 GiB of fp32: what the threads can stream from DRAM."""
    a = torch.ones(256 << 20)
    a.sum()
    best = min(_time_once(lambda: a.sum()) for _ in range(reps))
    return a.numel() * 4 / best / 1e9


def _time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ------------------------------------------------------------------ the contenders

@dataclass
class Contender:
    name: str
    weight_bytes: int                  # bytes one call reads: weights + scales + zeros
    make_call: Callable[[int], Callable[[torch.Tensor], torch.Tensor]]  # copy index -> fn(x)
    copies: int
    times: List[float] = field(default_factory=list)


def _copies(nbytes: int, cold_bytes: int) -> int:
    return max(2, math.ceil(cold_bytes / nbytes))


def build_contenders(K: int, N: int, modes: List[str], peers: bool, dense: bool,
                     cold_bytes: int) -> Dict[str, Contender]:
    w = torch.randn(N, K) * 0.02
    q8, s8 = formats.quantize_int8(w)
    q4, s4, z4 = formats.quantize_int4(w, GROUP_SIZE)
    out: Dict[str, Contender] = {}

    def add(name, tensors_of_copy, nbytes, call):
        n = _copies(nbytes, cold_bytes)
        pool = [tensors_of_copy() for _ in range(n)]
        out[name] = Contender(name, nbytes, lambda i: call(pool[i % n]), n)

    for name in modes:  # every lowbit mode through its description (lowbit.modes)
        mode = mode_table.get(name)
        canonical = {"weight": q4, "weight_scale": s4, "weight_zero": z4} if mode.grouped else \
            {"weight": q8, "weight_scale": s8}
        args = mode.weights.pack_args(canonical, GROUP_SIZE)
        add(name, lambda args=args, mode=mode: ops.pack(mode, *args), ops.pack(mode, *args).numel(),
            lambda p, mode=mode: lambda x: ops.linear(mode, x, p, N, GROUP_SIZE if mode.grouped else None))
    wanted = {PEER_OF[name] for name in modes} if peers else set()
    if "torch int8" in wanted:
        add("torch int8", lambda: q8.clone(), q8.numel() + s8.numel() * 2,
            lambda q: lambda x: torch._weight_int8pack_mm(x, q, s8.to(x.dtype)))
    if "torch int4" in wanted:
        # PyTorch's int4: w = (q - 8) * scale + zero_f, zero_f being the weight at q = 8
        q_int = formats.unpack_int4(q4).to(torch.int32)
        zero_f = (8 - z4.float()) * s4
        sz = {dt: torch.stack([s4, zero_f], -1).transpose(0, 1).contiguous().to(dt) for dt in DTYPES.values()}
        add("torch int4", lambda: torch._convert_weight_to_int4pack_for_cpu(q_int, 1), N * K // 2 + s4.numel() * 4,
            lambda p: lambda x: torch._weight_int4pack_mm_for_cpu(x, p, GROUP_SIZE, sz[x.dtype]))
    if "torch _int_mm" in wanted:
        s8_col = s8[None, :]

        def int_mm_path(q):
            qt = q.t()  # the transposed view: a contiguous [K, N] copy is several times slower at small M

            def run(x):
                xf = x.float()
                xs = xf.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
                xq = torch.round(xf / xs).clamp(-127, 127).to(torch.int8)
                return (torch._int_mm(xq, qt).float() * xs * s8_col).to(x.dtype)
            return run
        add("torch _int_mm", lambda: q8.clone(), q8.numel() + s8.numel() * 4, int_mm_path)
    if dense:
        add("dense bf16", lambda: w.to(torch.bfloat16), N * K * 2, lambda wd: lambda x: F.linear(x, wd.to(x.dtype))
            if x.dtype != torch.bfloat16 else F.linear(x, wd))
    return out


# ------------------------------------------------------------------ timing

def time_interleaved(contenders: Dict[str, Contender], x: torch.Tensor, budget_s: float) -> None:
    for c in contenders.values():
        c.times.clear()
    calls = {name: [c.make_call(i) for i in range(c.copies)] for name, c in contenders.items()}
    # one warm-up pass over every copy (first touch, lazy init), which also sizes the repetitions
    first = {name: sum(_time_once(lambda f=f: f(x)) for f in fs) / len(fs) for name, fs in calls.items()}
    per_round = sum(first.values())
    reps = int(min(25, max(5, budget_s / max(per_round, 1e-9))))
    for r in range(reps):
        for name, fs in calls.items():
            f = fs[r % len(fs)]
            contenders[name].times.append(_time_once(lambda: f(x)))


def median_ms(c: Contender) -> float:
    return statistics.median(c.times) * 1e3


# ------------------------------------------------------------------ report

class _NoBar:
    """Stands in for tqdm where it is not installed (scripts/hardware-check.sh needs only torch and pytest)."""

    def __init__(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass


def run(args) -> List[dict]:
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = _NoBar

    rows: List[dict] = []
    cold = max(4 * l3_bytes(), 128 << 20)
    for threads in args.threads:
        torch.set_num_threads(threads)
        bw = read_bandwidth_gbs()
        header = (f"lowbit {lowbit.__version__} | {cpu_model()} | variant {lowbit.cpu_isa()} | "
                  f"{threads} thread(s) | read bandwidth {bw:.1f} GB/s | cold set {cold >> 20} MiB")
        print(header)
        work = [(K, N, dt, M) for (K, N) in args.shapes for dt in args.dtypes for M in args.m]
        bar = tqdm(total=len(work), desc=f"{threads} thread(s)", leave=False)
        for K, N in args.shapes:
            for dt_name in args.dtypes:
                with_peers = dt_name == "bf16" or args.peers_all_dtypes
                contenders = build_contenders(K, N, args.modes, peers=with_peers, dense=with_peers,
                                              cold_bytes=cold)
                for M in args.m:
                    x = torch.randn(M, K, dtype=DTYPES[dt_name])
                    time_interleaved(contenders, x, args.budget)
                    ms = {name: median_ms(c) for name, c in contenders.items()}
                    for mode in args.modes:
                        c = contenders[mode]
                        t = ms[mode] / 1e3
                        row = dict(threads=threads, K=K, N=N, M=M, dtype=dt_name, mode=mode, ms=ms[mode],
                                   weight_gbs=c.weight_bytes / t / 1e9, gops=2 * M * K * N / t / 1e9,
                                   bandwidth_fraction=c.weight_bytes / t / 1e9 / bw,
                                   peer=PEER_OF[mode] if PEER_OF[mode] in ms else "",
                                   vs_peer=ms[PEER_OF[mode]] / ms[mode] if PEER_OF[mode] in ms else float("nan"),
                                   vs_dense_bf16=ms["dense bf16"] / ms[mode] if "dense bf16" in ms else float("nan"),
                                   peer_ms=ms.get(PEER_OF[mode], float("nan")),
                                   dense_ms=ms.get("dense bf16", float("nan")),
                                   read_gbs=bw, cpu=cpu_model(), variant=lowbit.cpu_isa())
                        rows.append(row)
                    bar.update(1)
                del contenders
        bar.close()
        print_table([r for r in rows if r["threads"] == threads])
    return rows


def print_table(rows: List[dict]) -> None:
    print(f"{'K x N':>12} {'M':>4} {'dtype':>5} {'mode':>6} {'ms':>9} {'GB/s':>7} {'GOP/s':>7} {'%BW':>5} "
          f"{'peer ms':>9} {'vs peer':>8} {'bf16 ms':>9} {'vs bf16':>8}")
    def num(v, fmt, suffix=""):  # peers are timed for bf16 only unless asked: print "-" for the rest
        return "-" if math.isnan(v) else f"{v:{fmt}}{suffix}"

    for r in rows:
        print(f"{r['K']:>5} x {r['N']:<5} {r['M']:>4} {r['dtype']:>5} {r['mode']:>6} {r['ms']:9.3f} "
              f"{r['weight_gbs']:7.2f} {r['gops']:7.1f} {100 * r['bandwidth_fraction']:5.0f} "
              f"{num(r['peer_ms'], '.3f'):>9} {num(r['vs_peer'], '.2f', 'x'):>8} "
              f"{num(r['dense_ms'], '.3f'):>9} {num(r['vs_dense_bf16'], '.2f', 'x'):>8}")


def write_outputs(rows: List[dict], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "kernels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    try:
        import matplotlib
    except ImportError:
        print(f"wrote {out_dir / 'kernels.csv'} (no chart: matplotlib is not installed)")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = sorted({r["mode"] for r in rows})
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        sel = [r for r in rows if r["mode"] == mode and r["dtype"] == "bf16" and not math.isnan(r["vs_peer"])]
        for (K, N, th) in sorted({(r["K"], r["N"], r["threads"]) for r in sel}):
            pts = sorted((r["M"], r["vs_peer"], r["vs_dense_bf16"]) for r in sel
                         if (r["K"], r["N"], r["threads"]) == (K, N, th))
            line = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{K}x{N}, {th}T vs peer")
            ax.plot([p[0] for p in pts], [p[2] for p in pts], ls="--", color=line[0].get_color(), alpha=0.6,
                    label=f"{K}x{N}, {th}T vs dense bf16")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("M (rows of x)")
        ax.set_ylabel("speedup (higher is better)")
        ax.set_title(f"{mode} vs {PEER_OF[mode]}")
        ax.legend(fontsize=6)
    r0 = rows[0]
    fig.suptitle(f"lowbit {r0['variant']} on {r0['cpu']}, bf16 activations", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "kernels.png", dpi=120)
    print(f"wrote {out_dir / 'kernels.csv'} and {out_dir / 'kernels.png'}")


def _shape(s: str):
    k, n = s.lower().split("x")
    return int(k), int(n)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lowbit bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", type=_shape, nargs="+", default=SHAPES, help="K x N, e.g. 4096x14336")
    p.add_argument("--m", type=int, nargs="+", default=[1, 8, 32, 128], help="rows of x")
    p.add_argument("--modes", nargs="+", default=list(mode_table.NAMES), choices=list(mode_table.NAMES))
    p.add_argument("--dtypes", nargs="+", default=["bf16"], choices=list(DTYPES))
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timing per (shape, M, dtype) point")
    p.add_argument("--peers-all-dtypes", action="store_true", help="also time the peers for fp16/fp32 inputs")
    p.add_argument("--out", type=Path, default=Path("build/bench"),
                   help="folder for kernels.csv/.png (default: %(default)s, untracked; recorded results live under "
                        "benchmarks/results/<machine>)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    rows = run(args)
    write_outputs(rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
