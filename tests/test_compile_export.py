"""Fake kernels and schemas: opcheck for every op; a quantized model under torch.compile and torch.export."""

import pytest
import torch
from torch import nn

import lowbit
from helpers import random_int4, random_int8

K, N = 128, 40


def _op_cases():
    q8, s8 = random_int8(N, K)
    q4, s4, z4 = random_int4(N, K, 32, False)
    x = torch.randn(3, K, dtype=torch.bfloat16)
    b = torch.randn(N, dtype=torch.bfloat16)
    p8 = torch.ops.lowbit.pack_a16w8(q8, s8)
    pd = torch.ops.lowbit.pack_da8w8(q8, s8)
    p4 = torch.ops.lowbit.pack_a16w4(q4, s4, z4, 32)
    return [
        ("pack_a16w8", (q8, s8)),
        ("pack_da8w8", (q8, s8)),
        ("pack_a16w4", (q4, s4, z4, 32)),
        ("pack_a16w4", (q4, s4, None, 32)),
        ("linear_a16w8", (x, p8, N, b)),
        ("linear_a16w8", (x.float(), p8, N, None)),
        ("linear_da8w8", (x, pd, N, b)),
        ("linear_a16w4", (x.half(), p4, N, 32, b.half())),
        ("linear_a16w4", (x.reshape(1, 3, K), p4, N, 32, None)),
    ]


@pytest.mark.parametrize("case", range(len(_op_cases())))
def test_opcheck(case):
    name, args = _op_cases()[case]
    torch.library.opcheck(getattr(torch.ops.lowbit, name).default, args)


def _model(mode):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(K, 96), nn.GELU(), nn.Linear(96, N, bias=False)).to(torch.bfloat16)
    return lowbit.quantize_(m, mode, group_size=32).eval()


@pytest.mark.parametrize("mode", lowbit.MODES)
def test_compile_fullgraph_matches_eager(mode):
    model = _model(mode)
    x = torch.randn(5, K, dtype=torch.bfloat16)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model, fullgraph=True, backend="inductor")(x)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=0)


@pytest.mark.parametrize("mode", lowbit.MODES)
def test_export_matches_eager(mode):
    model = _model(mode)
    x = torch.randn(2, 7, K, dtype=torch.bfloat16)
    with torch.no_grad():
        ep = torch.export.export(model, (x,))
        targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
        assert f"lowbit.linear_{mode}.default" in targets
        torch.testing.assert_close(ep.module()(x), model(x), rtol=0, atol=0)
