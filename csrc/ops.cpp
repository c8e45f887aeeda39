// The op schemas of lowbit, defined once for every backend (the list: op_schemas.h). This file is in the
// always-loaded CPU library, so a graph exported with these ops resolves them without Python. Canonical
// formats and semantics: docs/formats.md and python/lowbit/reference.py.
#include <torch/csrc/stable/library.h>

#include "op_schemas.h"

STABLE_TORCH_LIBRARY(lowbit, m) { lowbit::define_op_schemas(m); }
