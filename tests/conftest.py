import os

# Outputs are filled with NaN before every kernel runs, so an element a kernel forgets to write fails the
# comparison instead of passing on a lucky zero. Must be set before lowbit's library is loaded.
os.environ.setdefault("LOWBIT_DEBUG_POISON", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

import lowbit  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
