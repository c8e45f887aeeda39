"""`python -m lowbit`: what quantizing with lowbit buys on this machine."""

import argparse
import copy
import time

import torch
from torch import nn

import lowbit


def _median_ms(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def demo(args) -> int:
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    dim, hidden = args.dim, args.hidden
    model = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim)).to(args.dtype).eval()
    x = torch.randn(args.batch, dim, dtype=args.dtype)
    with torch.no_grad():
        ref = model(x).double()
        base_ms = _median_ms(lambda: model(x), args.reps)
        print(f"lowbit {lowbit.__version__} | CPU kernels: {lowbit.cpu_isa()} | threads: {args.threads} | "
              f"MLP {dim}->{hidden}->{dim}, batch {args.batch}, {args.dtype}")
        print(f"{'mode':<8} {'ms':>8} {'speedup':>8} {'rel. error':>11}")
        print(f"{'nn.Linear':<8} {base_ms:8.3f} {1.0:8.2f} {0.0:11.2e}")
        for mode in lowbit.MODES:
            q = lowbit.quantize_(copy.deepcopy(model), mode, group_size=args.group_size)
            ms = _median_ms(lambda: q(x), args.reps)
            err = ((q(x).double() - ref).norm() / ref.norm()).item()
            print(f"{mode:<8} {ms:8.3f} {base_ms / ms:8.2f} {err:11.2e}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lowbit", description=__doc__)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=2816)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--group-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--dtype", type=lambda s: getattr(torch, s), default=torch.bfloat16)
    return demo(parser.parse_args(argv))
