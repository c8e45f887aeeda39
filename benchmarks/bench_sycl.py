"""The SYCL kernels on the CPU as a SYCL device vs lowbit's native CPU kernels, plus kernel compile times.

    python benchmarks/bench_sycl.py                       # K = N = 4096, M in 1 128, bf16, all three modes
    python benchmarks/bench_sycl.py --m 1 8 128 --shape 4096 14336

The SYCL path on a CPU is a test vehicle, not a product (native C++ is expected to win there); what this checks is
that it is not grossly wasteful: at M = 1 a weight-streaming kernel should move its weights at a good fraction of
the machine's read bandwidth. Same fairness rules as lowbit.bench: every call reads a different copy of its
weights, from a set larger than 4x the L3 cache; contenders are interleaved call by call; medians are reported.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Two thread pools take turns here, call by call: torch's OpenMP pool (native kernels) and the SYCL CPU device's TBB
# workers. OpenMP threads spin after each parallel region by default and then hold the cores the next SYCL call
# needs (measured on the 2-core VM: 7.8 ms -> 3.1 ms native and 10.2 ms -> 5.8 ms SYCL per a16w4 call once they
# sleep instead), so the bench makes them sleep unless the caller chose a policy. Set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402

import lowbit  # noqa: E402
from lowbit import formats, ops  # noqa: E402
from lowbit.bench import cpu_model, l3_bytes, read_bandwidth_gbs  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
GROUP_SIZE = 128


def contenders(mode, K, N, M):
    """name -> (route to SYCL?, LOWBIT_SYCL_TILED_MIN_M or None). At M >= 16 both SYCL launch paths are shown."""
    out = {"native": (False, None), "sycl": (True, None)}
    if M > 1:
        out = {"native": (False, None), "sycl rows": (True, "1000000000"), "sycl tiled": (True, "0")}
    return out


def make_pack(mode, w):
    if mode == "a16w4":
        q, s, z = formats.quantize_int4(w, GROUP_SIZE)
        return lambda: ops.pack_a16w4(q, s, z, GROUP_SIZE), lambda x, p, n: ops.linear_a16w4(x, p, n, GROUP_SIZE)
    q, s = formats.quantize_int8(w)
    pack, linear = getattr(ops, f"pack_{mode}"), getattr(ops, f"linear_{mode}")
    return lambda: pack(q, s), lambda x, p, n: linear(x, p, n)


def bench_shape(mode, K, N, M, dtype, cold_bytes, reps):
    w = torch.randn(N, K) * 0.02
    pack, linear = make_pack(mode, w)
    x = torch.randn(M, K, dtype=dtype)
    runs = {}
    for name, (route, tiled_min_m) in contenders(mode, K, N, M).items():
        with lowbit.sycl.route_cpu(route):
            first = pack()
            copies = max(2, -(-cold_bytes // first.numel()))
            pool = [first] + [pack() for _ in range(copies - 1)]
        runs[name] = dict(route=route, tiled=tiled_min_m, pool=pool, bytes=first.numel(), times=[])
    for name, r in runs.items():  # warm up: builds the kernels, touches the code paths
        with lowbit.sycl.route_cpu(r["route"]):
            _set_tiled(r["tiled"])
            linear(x, r["pool"][0], N)
    for i in range(reps):
        for name, r in runs.items():
            with lowbit.sycl.route_cpu(r["route"]):
                _set_tiled(r["tiled"])
                p = r["pool"][i % len(r["pool"])]
                t0 = time.perf_counter()
                linear(x, p, N)
                r["times"].append(time.perf_counter() - t0)
    _set_tiled(None)
    return {name: (statistics.median(r["times"]), r["bytes"]) for name, r in runs.items()}


def _set_tiled(value):
    if value is None:
        os.environ.pop("LOWBIT_SYCL_TILED_MIN_M", None)
    else:
        os.environ["LOWBIT_SYCL_TILED_MIN_M"] = value


COMPILE_PROBE = """
import time, torch, lowbit
from lowbit import formats, ops
w = torch.randn(256, 512)
q, s, z = formats.quantize_int4(w, 128)
x = torch.randn(1, 512, dtype=torch.bfloat16)
with lowbit.sycl.route_cpu():
    t0 = time.perf_counter(); p = ops.pack_a16w4(q, s, z, 128); t1 = time.perf_counter()
    ops.linear_a16w4(x, p, 256, 128); t2 = time.perf_counter()
    ops.linear_a16w4(x, p, 256, 128); t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def compile_times():
    """First pack + first a16w4 linear in a fresh process: with an empty persistent cache (cold), then again with
    the cache it filled (warm), and a second call in the same process (the in-process cache)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SYCL_CACHE_PERSISTENT": "1", "SYCL_CACHE_DIR": cache}
        rows = []
        for label in ("cold (empty SYCL cache)", "warm (SYCL_CACHE_PERSISTENT)"):
            out = subprocess.run([sys.executable, "-c", COMPILE_PROBE], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
            rows.append((label, *map(float, out)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=2, default=[4096, 4096], metavar=("K", "N"))
    ap.add_argument("--m", type=int, nargs="+", default=[1, 128])
    ap.add_argument("--modes", nargs="+", default=["a16w4", "a16w8", "da8w8"])
    ap.add_argument("--dtype", choices=DTYPES, default="bf16")
    ap.add_argument("--reps", type=int, default=40)
    args = ap.parse_args(argv)
    if not lowbit.sycl.available():
        sys.exit(f"the SYCL path is unavailable: {lowbit.sycl.unavailable_reason()}")
    K, N = args.shape
    cold = 4 * max(l3_bytes(), 32 << 20)  # the Zen 4 part has 32 MiB of L3; sysfs in a VM may report less
    bw = read_bandwidth_gbs()
    print(f"# {cpu_model()} | SYCL device: {lowbit.sycl.cpu_device()} | torch threads {torch.get_num_threads()} | "
          f"os.cpu_count {os.cpu_count()} | OMP_WAIT_POLICY {os.environ['OMP_WAIT_POLICY']} | "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# read bandwidth {bw:.1f} GB/s (torch sum over 1 GiB) | weights rotated over >= {cold >> 20} MiB | "
          f"K = {K}, N = {N}, {args.dtype}, median of {args.reps} interleaved calls")
    print()
    print("| mode | M | kernels | ms | weights GB/s | % of read bandwidth | GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for mode in args.modes:
        for M in args.m:
            for name, (t, nbytes) in bench_shape(mode, K, N, M, DTYPES[args.dtype], cold, args.reps).items():
                gbs = nbytes / t / 1e9
                print(f"| {mode} | {M} | {name} | {t * 1e3:.2f} | {gbs:.2f} | {100 * gbs / bw:.0f}% | "
                      f"{2 * M * K * N / t / 1e9:.1f} |", flush=True)
    print()
    print("| kernel compile (a16w4, bf16) | pack_a16w4 first call s | linear_a16w4 first call s | second call s |")
    print("|---|---|---|---|")
    for label, pack_s, first_s, second_s in compile_times():
        print(f"| {label} | {pack_s:.2f} | {first_s:.2f} | {second_s:.4f} |")


if __name__ == "__main__":
    main()
