"""lowbit: int4/int8 GEMM kernels for PyTorch on the stable ABI.

    import lowbit
    lowbit.quantize_(model, "a16w4", group_size=128)   # nn.Linear -> lowbit.nn.QuantLinear, in place
    lowbit.load_gguf_(model, "model.Q4_1.gguf")        # or the int4 integers of the GGUF it was loaded from
    y = torch.ops.lowbit.linear_a16w8(x, packed, N)    # or the typed wrappers in lowbit.ops
"""

from lowbit._library import cpu_isa, load as _load, supported_cpu_isas

_load()

from lowbit import sycl  # noqa: E402
sycl.load_at_import()  # the SYCL kernels' library, only if a SYCL runtime is importable; silent otherwise

from lowbit import formats, ops, reference  # noqa: E402  (ops need the library loaded)
from lowbit.nn import QuantLinear  # noqa: E402
from lowbit.quantize import MODES, quantize_  # noqa: E402
from lowbit.gguf_import import load_gguf_  # noqa: E402  (needs the `gguf` package only when called)

__version__ = "0.1.0"
__all__ = ["MODES", "QuantLinear", "cpu_isa", "formats", "load_gguf_", "ops", "quantize_", "reference",
           "supported_cpu_isas", "sycl"]
