"""The AMX variant's promises that the op suite does not cover: it is opt-in (CPUID never chooses it until it has
passed on AMX hardware), it is listed wherever the CPU could run it, and a process the OS refuses tile data falls
back to the AVX-512 kernels with one log line. The emulated twin (amx-emu, LOWBIT_EMULATED_ISAS builds) stands in
for the hardware; the op suite itself runs under amx-emu through tests/test_library.py."""

import os
import re
import subprocess
import sys

import pytest

import lowbit

_CPU_FLAGS = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
_CPU_HAS_AMX = all(re.search(rf"\b{f}\b", _CPU_FLAGS) for f in ("amx_tile", "amx_int8", "amx_bf16", "avx512_bf16"))
_EMULATED = "amx-emu" in lowbit.supported_cpu_isas()


def _run(code, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("LOWBIT_CPU_ISA", "LOWBIT_AMX_EMULATE_REFUSAL")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env})


def test_amx_is_listed_where_the_cpu_has_it_and_never_the_default():
    variants = lowbit.supported_cpu_isas()
    assert ("amx" in variants) == _CPU_HAS_AMX, (variants, _CPU_HAS_AMX)
    r = _run("import lowbit; print(lowbit.cpu_isa())")
    assert r.returncode == 0 and r.stdout.strip() != "amx", r.stderr[-2000:]
    if _CPU_HAS_AMX:  # opt-in: after the default and the other native variants, before the emulated ones
        native = [v for v in variants if not v.endswith("-emu") and v != "generic"]
        assert native[-1] == "amx" and variants[0] != "amx"


def test_amx_is_chosen_when_asked_for():
    r = _run("import lowbit; print(lowbit.cpu_isa())", LOWBIT_CPU_ISA="amx")
    if _CPU_HAS_AMX:
        assert r.returncode == 0 and r.stdout.strip() == "amx", r.stderr[-2000:]
    else:
        assert r.returncode != 0 and "cannot run that variant" in r.stderr, r.stderr[-2000:]


_ALL_MODES = """
import torch, lowbit
from lowbit import ops, reference
from helpers import assert_close_a16, assert_close_da8w8, da8w8_magnitude, int4_fold_magnitude, random_int4, random_int8
torch.manual_seed(0)
m, k, n = 40, 256, 40
x = torch.randn(m, k, dtype=torch.bfloat16)
q, s = random_int8(n, k)
for _ in range(2):  # the permission is asked for once per process, whatever the number of calls
    out = ops.linear_a16w8(x, ops.pack_a16w8(q, s), n)
    assert_close_a16(out, reference.linear_a16w8(x, q, s, None, dtype=torch.float64), x, reference.dequantize_int8(q, s), None)
    pq, s4, z4 = random_int4(n, k, 64, False)
    out = ops.linear_a16w4(x, ops.pack_a16w4(pq, s4, z4, 64), n, 64)
    assert_close_a16(out, reference.linear_a16w4(x, pq, s4, z4, 64, None, dtype=torch.float64), x,
                     int4_fold_magnitude(pq, s4, z4, 64), None)
    out = ops.linear_da8w8(x, ops.pack_da8w8(q, s), n)
    assert_close_da8w8(out, reference.linear_da8w8(x, q, s, None, dtype=torch.float64), None,
                       da8w8_magnitude(x, q, s, None))
print(lowbit.cpu_isa())
"""


@pytest.mark.skipif(not _EMULATED, reason="needs a LOWBIT_EMULATED_ISAS=1 build (amx-emu)")
@pytest.mark.parametrize("refused", [False, True], ids=["granted", "refused"])
def test_tile_permission_refused_falls_back_with_one_log_line(refused):
    """amx-emu plays the OS: LOWBIT_AMX_EMULATE_REFUSAL=1 makes its permission request fail, as
    arch_prctl(ARCH_REQ_XCOMP_PERM) does on a kernel without AMX support; every mode must still be right."""
    env = {"LOWBIT_CPU_ISA": "amx-emu", "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    if refused:
        env["LOWBIT_AMX_EMULATE_REFUSAL"] = "1"
    r = _run(_ALL_MODES, **env)
    assert r.returncode == 0 and r.stdout.strip() == "amx-emu", r.stdout[-2000:] + r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if "refused AMX tile data" in line]
    assert len(lines) == (1 if refused else 0), r.stderr[-2000:]
