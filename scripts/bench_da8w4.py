"""da8w4 (torch.ops.lowbit.linear_da8w4) against PyTorch's int4 op, dense bf16 F.linear and lowbit's a16w4, in one
process, interleaved, each op reading a different copy of its weights per call from a set beyond 4x the L3
(lowbit.bench's rules). Temporary until the mode is wired into lowbit.bench.

    python scripts/bench_da8w4.py [--m 1 8 32] [--threads 2] [--shapes 4096x14336 14336x4096] [--budget 3]
                                  [--group 128]   (32, 64, 128 or 256: the group sizes PyTorch's int4 op takes)
"""

import argparse

import torch
import torch.nn.functional as F

import lowbit
from lowbit import bench, formats

ops = torch.ops.lowbit


def contenders(K, N, cold, G):
    w = torch.randn(N, K) * 0.02
    q4, s4, z4 = formats.quantize_int4(w, G)
    out = {}

    def add(name, make, nbytes, call):
        n = bench._copies(nbytes, cold)
        pool = [make() for _ in range(n)]
        out[name] = bench.Contender(name, nbytes, lambda i: call(pool[i % n]), n)

    p = ops.pack_da8w4(q4, s4, z4, G)
    add("da8w4", lambda: ops.pack_da8w4(q4, s4, z4, G), p.numel(), lambda p: lambda x: ops.linear_da8w4(x, p, N, G))
    add("a16w4", lambda: ops.pack_a16w4(q4, s4, z4, G), p.numel(), lambda p: lambda x: ops.linear_a16w4(x, p, N, G))
    # PyTorch's int4 (as lowbit.bench calls it): w = (q - 8) * scale + zero_f, zero_f the weight at q = 8
    q_int = formats.unpack_int4(q4).to(torch.int32)
    sz = torch.stack([s4, (8 - z4.float()) * s4], -1).transpose(0, 1).contiguous().to(torch.bfloat16)
    add("torch int4", lambda: torch._convert_weight_to_int4pack_for_cpu(q_int, 1), N * K // 2 + s4.numel() * 4,
        lambda p: lambda x: torch._weight_int4pack_mm_for_cpu(x, p, G, sz))
    add("dense bf16", lambda: w.to(torch.bfloat16), N * K * 2, lambda wd: lambda x: F.linear(x, wd))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--shapes", nargs="+", default=["4096x14336", "14336x4096"])
    ap.add_argument("--budget", type=float, default=3.0)
    ap.add_argument("--group", type=int, default=bench.GROUP_SIZE, choices=[32, 64, 128, 256])
    args = ap.parse_args()
    cold = max(4 * bench.l3_bytes(), 128 << 20)
    for t in args.threads:
        torch.set_num_threads(t)
        print(f"{bench.cpu_model()} | variant {lowbit.cpu_isa()} | {t} thread(s) | "
              f"read bandwidth {bench.read_bandwidth_gbs():.1f} GB/s | cold set {cold >> 20} MiB | group {args.group} | bf16 x")
        print(f"{'K x N':>13} {'M':>3} {'da8w4 ms':>9} {'a16w4 ms':>9} {'int4 ms':>9} {'bf16 ms':>9} "
              f"{'vs int4':>8} {'vs bf16':>8} {'vs a16w4':>8}")
        for shape in args.shapes:
            K, N = map(int, shape.split("x"))
            cs = contenders(K, N, cold, args.group)
            for M in args.m:
                x = torch.randn(M, K, dtype=torch.bfloat16)
                bench.time_interleaved(cs, x, args.budget)
                ms = {name: bench.median_ms(c) for name, c in cs.items()}
                d = ms["da8w4"]
                print(f"{K:>5} x {N:<5} {M:>3} {d:9.3f} {ms['a16w4']:9.3f} {ms['torch int4']:9.3f} "
                      f"{ms['dense bf16']:9.3f} {ms['torch int4'] / d:7.2f}x {ms['dense bf16'] / d:7.2f}x "
                      f"{ms['a16w4'] / d:7.2f}x", flush=True)
            del cs


if __name__ == "__main__":
    main()
