"""Fake kernels and schemas: opcheck for every op; a quantized model under torch.compile and torch.export."""

import pytest
import torch
from torch import nn

import cases
import lowbit
from helpers import random_int4, random_int4_offsets, random_int8
from lowbit import modes

K, N = 128, 40


def _op_cases():
    """Every mode's pack op (int4: asymmetric and symmetric) and linear op (with and without bias, bf16 / fp16 /
    fp32, leading dims), with the op's raw arguments."""
    x = torch.randn(3, K, dtype=torch.bfloat16)
    b = torch.randn(N, dtype=torch.bfloat16)
    out = []
    for mode in cases.MODES:
        g = 32 if mode in cases.INT4_MODES else None
        for symmetric in ((False, True) if g else (True,)):
            w = cases.random_weights(mode, N, K, g, symmetric)
            args = modes.get(mode).weights.pack_args(w, g)
            out.append((f"pack_{mode}", args))
        packed = getattr(torch.ops.lowbit, f"pack_{mode}")(*args)
        extra = (g,) if g else ()
        out += [(f"linear_{mode}", (x, packed, N, *extra, b)),
                (f"linear_{mode}", (x.float(), packed, N, *extra, None)),
                (f"linear_{mode}", (x.half().reshape(1, 3, K), packed, N, *extra, b.half()))]
    qo, so, oo = random_int4_offsets(N, K, 32)  # a16w4 with float offsets
    po = torch.ops.lowbit.pack_a16w4(qo, so, oo, 32)
    out += [("pack_a16w4", (qo, so, oo, 32)), ("linear_a16w4", (x, po, N, 32, b))]
    return out


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


def _bad_calls():
    """Direct op calls the C++ kernels refuse (name, op, args): each fake kernel must refuse it too, with the same
    message, so torch.compile / torch.export fail as eager does (issue 11, item 15)."""
    q8, s8 = random_int8(N, K)
    q4, s4, z4 = random_int4(N, K, 32, False)
    x = torch.randn(3, K, dtype=torch.bfloat16)
    b = torch.randn(N, dtype=torch.bfloat16)
    op = torch.ops.lowbit
    p8, pd, p4 = op.pack_a16w8(q8, s8), op.pack_da8w8(q8, s8), op.pack_a16w4(q4, s4, z4, 32)
    return [
        ("group_size 3", op.linear_a16w4, (x, p4, N, 3, None)),
        ("group_size 0", op.linear_a16w4, (x, p4, N, 0, None)),
        ("group_size -2", op.linear_a16w4, (x, p4, N, -2, None)),
        ("group_size 48", op.linear_a16w4, (x, p4, N, 48, None)),
        ("group_size of another packing", op.linear_a16w4, (x, p4, N, 64, None)),
        ("odd K", op.linear_a16w4, (x[:, :63].contiguous(), p4, N, 32, None)),
        ("x int64", op.linear_a16w8, (x.long(), p8, N, None)),
        ("x float64", op.linear_da8w8, (x.double(), pd, N, None)),
        ("x 0-d", op.linear_a16w8, (x[0, 0], p8, N, None)),
        ("x strided", op.linear_a16w8, (torch.randn(3, 2 * K, dtype=torch.bfloat16)[:, ::2], p8, N, None)),
        ("K = 0", op.linear_a16w8, (x[:, :0], torch.zeros(3, 64, dtype=torch.uint8), N, None)),
        ("K mismatch", op.linear_a16w8, (torch.randn(3, K + 16, dtype=torch.bfloat16), p8, N, None)),
        ("N mismatch", op.linear_a16w8, (x, p8, N + 16, None)),
        ("out_features 0", op.linear_da8w8, (x, pd, 0, None)),
        ("other mode's packing", op.linear_a16w8, (x, pd, N, None)),
        ("float packed weight", op.linear_a16w8, (x, p8.float(), N, None)),
        ("1-D packed weight", op.linear_a16w8, (x, p8.flatten(), N, None)),
        ("bias dtype", op.linear_a16w8, (x, p8, N, b.float())),
        ("bias shape", op.linear_a16w4, (x, p4, N, 32, b[:-1])),
        ("da8w8 K above the int32 bound", op.linear_da8w8,
         (torch.randn(1, 140000), torch.zeros(3, 128 + 16 * 140000, dtype=torch.uint8), N, None)),
        ("float weight", op.pack_a16w8, (q8.float(), s8)),
        ("1-D weight", op.pack_a16w8, (q8[0], s8)),
        ("scales shape", op.pack_da8w8, (q8, s8[:-1])),
        ("da8w8 weight K above the bound", op.pack_da8w8, (torch.zeros(1, 132105, dtype=torch.int8), torch.ones(1))),
        ("int4 group_size 3", op.pack_a16w4, (q4, s4, z4, 3)),
        ("int4 group_size 0", op.pack_a16w4, (q4, s4, z4, 0)),
        ("int4 int8 weight", op.pack_a16w4, (q4.view(torch.int8), s4, z4, 32)),
        ("int4 zeros int32", op.pack_a16w4, (q4, s4, z4.int(), 32)),
        ("int4 zeros shape", op.pack_a16w4, (q4, s4, z4[:, :1].contiguous(), 32)),
        ("int4 scales transposed", op.pack_a16w4, (q4, s4.t().contiguous().t(), z4, 32)),
    ]


def _lowbit_message(e: Exception) -> str:
    """The text from "lowbit:" on (the C++ errors begin with the op's name, file and line)."""
    text = str(e).splitlines()[0]
    assert "lowbit: " in text, text
    return text[text.index("lowbit: "):]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_fake_kernels_refuse_what_the_ops_refuse(case):
    from torch._subclasses.fake_tensor import FakeTensorMode
    name, op, args = _bad_calls()[case]
    with pytest.raises(RuntimeError) as eager:
        op(*args)
    with FakeTensorMode() as mode:
        fake_args = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        with pytest.raises(RuntimeError) as fake:
            op(*fake_args)
    assert _lowbit_message(fake.value) == _lowbit_message(eager.value), name


def test_compile_fails_like_eager_on_a_wrong_group_size():
    q4, s4, z4 = random_int4(N, K, 32, False)
    p4 = torch.ops.lowbit.pack_a16w4(q4, s4, z4, 32)
    x = torch.randn(3, K, dtype=torch.bfloat16)
    fn = torch.compile(lambda x: torch.ops.lowbit.linear_a16w4(x, p4, N, 3, None), fullgraph=True, backend="eager")
    with pytest.raises(Exception, match="group_size must be a positive even number, got 3"):
        fn(x)


def test_compile_and_export_with_float_offsets():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(K, 96), nn.GELU(), nn.Linear(96, N, bias=False)).to(torch.bfloat16)
    model = lowbit.quantize_(m, "a16w4", group_size=32, offsets=True).eval()
    x = torch.randn(5, K, dtype=torch.bfloat16)
    with torch.no_grad():
        want = model(x)
        assert torch.equal(torch.compile(model, fullgraph=True)(x), want)
        assert torch.equal(torch.export.export(model, (x,)).module()(x), want)
