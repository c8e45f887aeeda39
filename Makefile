# Two commands set everything up on a fresh machine (see README.md):
#   make demo   - the main job on its built-in default
#   make test   - the whole test suite (what .ci/run calls)
# Both create or reuse .venv and (re)build the native library.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: venv build test demo bench wheel clean

$(VENV)/.deps: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch 2.13.0 (CPU build) installs from a local file on these machines
	$(PIP) install -q torch==2.13.0 "setuptools>=69" wheel cmake ninja pytest hypothesis safetensors numpy
	touch $@

venv: $(VENV)/.deps

build: venv
	$(PIP) install -q --no-build-isolation --no-deps -e .

test: build
	$(PY) -m pytest -q tests

demo: build
	$(PY) -m lowbit

wheel: venv
	$(PIP) wheel --no-build-isolation --no-deps -w dist .

clean:
	rm -rf build dist python/lowbit/*.so python/*.egg-info
