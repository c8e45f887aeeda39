#!/usr/bin/env bash
# The ABI promise, checked on demand (not in CI: it installs a second torch, ~5.5 GB for the CUDA build):
# build lowbit's wheel once with the torch of .venv, install that same wheel into a fresh venv holding another
# torch, and run the op tests there against the installed wheel (not the source tree).
#
#   scripts/check_other_torch.sh            # torch 2.14.1
#   scripts/check_other_torch.sh 2.10.0     # any version pip can install here
#
# Work files go to build/other-torch/ (the venv is reused on a rerun; delete it to start over).
set -euo pipefail
TORCH_VERSION="${1:-2.14.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$ROOT/build/other-torch"
VENV="$WORK/venv-torch-$TORCH_VERSION"
PY=python3
# the op tests: everything that calls the kernels, none that needs the source tree or the build tools
TESTS=(test_linear.py test_errors.py test_serialization.py test_quantize.py test_compile_export.py
       test_hostile.py test_concurrency.py test_fuzz.py)

echo "== building the wheel with $("$ROOT/.venv/bin/python" -c 'import torch; print("torch", torch.__version__)')"
rm -rf "$WORK/dist" && mkdir -p "$WORK/dist"
"$ROOT/.venv/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w "$WORK/dist" "$ROOT"
WHEEL="$(ls "$WORK"/dist/lowbit-*.whl)"
echo "== $(basename "$WHEEL")"

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV with torch==$TORCH_VERSION"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" pytest hypothesis safetensors numpy
fi
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEEL"

# Run from a copy of tests/ outside the source tree, so `import lowbit` can only find the installed wheel.
rm -rf "$WORK/tests" && cp -r "$ROOT/tests" "$WORK/tests"
cd "$WORK/tests"
"$VENV/bin/python" - <<'PY'
import torch, lowbit
print(f"== torch {torch.__version__}, lowbit from {lowbit.__file__}, CPU variant {lowbit.cpu_isa()}")
assert "site-packages" in lowbit.__file__, "lowbit must come from the installed wheel"
PY
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
echo "== the wheel built against $("$ROOT/.venv/bin/python" -c 'import torch; print(torch.__version__)') passes the op tests on torch $TORCH_VERSION"
