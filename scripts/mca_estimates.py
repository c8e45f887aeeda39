#!/usr/bin/env python3
"""Throughput estimates of the AVX-512 and AMX inner loops on CPUs you may not have, from llvm-mca's scheduling
models (AMX tile products, which llvm-mca 14 does not model, at Intel's documented throughput).

    scripts/mca_estimates.py                          # sapphirerapids and icelake-server
    scripts/mca_estimates.py --mcpu znver4 --llvm-mca llvm-mca-19

Compiles each AVX-512 / AMX kernel file to assembly with the variant's flags (g++), finds its innermost loops (a block
that jumps back to its own label and holds the instruction of interest), and runs llvm-mca on each loop body.
Prints cycles per iteration and what one iteration does. These are estimates of a model, not measurements:
they ignore memory (every load hits L1) and can be off by tens of percent; use them to compare designs.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno", "-mavx512f", "-mavx512bw", "-mavx512vl",
         "-mavx512dq", "-mavx512vnni", "-mfma", "-mf16c", "-w"]
AMX = ["-mavx512bf16", "-mamx-tile", "-mamx-int8", "-mamx-bf16"]
# The tile products: llvm-mca 14 has no scheduling model for AMX (its sapphirerapids is the Skylake-X model, where
# every tile instruction is an unmodelled placeholder of 100 cycles), so their loops are reported with Intel's
# documented throughput instead: one TDPBF16PS / TDPBSSD per 16 cycles per core (16 x 16 x 32 bf16 or 16 x 16 x
# 64 int8 multiply-adds), the tile loads overlapping them.
TDP_CYCLES = 16
# (variant folder, file, instruction of interest, extra flags)
KERNELS = [
    ("amx", "linear_bf16.cpp", "tdpbf16ps", AMX),
    ("amx", "gemm_s8.cpp", "tdpbssd", AMX),
    ("amx", "linear_bf16.cpp", "vperm", AMX),   # int8 / int4 -> bf16 pairs, the B tiles of a chunk
    ("amx", "linear_bf16.cpp", "vfmadd", AMX),  # a16w4: folding a group's C tiles into the output
    ("avx512_bf16", "linear_bf16.cpp", "vdpbf16ps", ["-mavx512bf16"]),
    ("avx512_vnni", "gemm_s8.cpp", "vpdpbusd", []),
    ("avx512_vnni", "gemm_f32.cpp", "vfmadd", []),
    ("avx512_vnni", "gemv.cpp", "vfmadd", []),
]


def loops(asm: str):
    """(function, label, body lines) of every block that jumps back to its own label (the body up to that jump;
    GCC may place a loop's exit code after its backward branch, before the next label)."""
    fn, label, body = None, None, []
    for line in asm.splitlines():
        if re.match(r"^_Z\S*:$", line):
            fn = line[:-1]
        if re.match(r"^(\.L\w+|_Z\S*):$", line):
            label, body = line[:-1], []
        elif label and line.startswith("\t") and not line.startswith("\t."):
            body.append(line)
            if re.match(r"\s*j\w+\s+" + re.escape(label) + r"\s*$", line):
                yield fn, label, body
                label, body = None, []


def cycles_per_iteration(llvm_mca: str, mcpu: str, body, work: Path) -> float:
    src = work / "loop.s"
    src.write_text("\n".join(b for b in body if not re.match(r"\s*j\w+\s", b)) + "\n")
    out = subprocess.run([llvm_mca, f"-mcpu={mcpu}", "-iterations=200", str(src)], capture_output=True,
                         text=True, check=True).stdout
    return int(re.search(r"Total Cycles:\s+(\d+)", out).group(1)) / 200


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mcpu", nargs="+", default=["sapphirerapids", "icelake-server"])
    p.add_argument("--llvm-mca", default=shutil.which("llvm-mca-19") or shutil.which("llvm-mca") or "llvm-mca")
    p.add_argument("--top", type=int, default=3, help="loops per file (those with the most instructions of interest)")
    args = p.parse_args()
    version = subprocess.run([args.llvm_mca, "--version"], capture_output=True, text=True).stdout
    tool = re.search(r"version [0-9.]+", version)
    print(f"# estimates from {args.llvm_mca} ({tool.group(0) if tool else '?'}), not measurements")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for variant, name, insn, extra in KERNELS:
            asm = subprocess.run(["g++", *FLAGS, *extra, f"-I{ROOT / 'csrc'}", f"-DLOWBIT_VARIANT_NS={variant}",
                                  f"-DLOWBIT_VARIANT_FILL=fill_{variant}", "-S", "-o", "-",
                                  str(ROOT / "csrc/cpu/kernels" / variant / name)],
                                 capture_output=True, text=True, check=True).stdout
            found = sorted(loops(asm), key=lambda t: -sum(insn in b for b in t[2]))
            seen = set()
            for fn, label, body in found:
                n = sum(insn in b for b in body)
                if n == 0 or len(seen) >= args.top:
                    break
                func = subprocess.run(["c++filt", fn], capture_output=True, text=True).stdout.strip()
                func = re.sub(r"lowbit::cpu::\w+::(\(anonymous namespace\)::)?", "", func).split("(")[0]
                if (func, n) in seen:
                    continue
                seen.add((func, n))
                if insn.startswith("tdp"):
                    est = f"not modelled by llvm-mca; >= {n * TDP_CYCLES} by Intel's TDP throughput"
                else:
                    est = ", ".join(f"{c} {cycles_per_iteration(args.llvm_mca, c, body, work):.1f}" for c in args.mcpu)
                loads = sum(bool(re.search(r"\(%", b)) for b in body)
                print(f"{variant}/{name:15s} {func[:60]:60s} {n:2d} x {insn:9s} {len(body):3d} instr "
                      f"{loads:2d} mem | cycles/iter: {est}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
