# One environment (.venv, Python >= 3.12, pinned requirements.txt) for the demo, the tests and the tools.
PYTHON := $(shell scripts/find_python.sh)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv demo test clean-demo torch-env onnx-env beam-env

$(STAMP): requirements.txt setup.py
	@test -n "$(PYTHON)" || { echo "no Python >= 3.12 found (see scripts/find_python.sh)"; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	$(VENV)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# Builds the synthetic dataset, trains the small model, evaluates it, runs detect on a real clip.
demo: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash launch/demo.sh

# The PyTorch (parity, torch export), ONNX and Apache Beam environments are made first when possible; their
# tests skip with a reason when they are absent (e.g. no Python 3.11 for the CPU torch wheel).
test: $(STAMP)
	-@bash scripts/torch_env.sh >/dev/null
	-@bash scripts/onnx_env.sh >/dev/null
	-@bash scripts/beam_env.sh >/dev/null
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/run_tests.sh

# Python 3.11 + CPU torch 2.13.0 for the PyTorch side of the parity and export tests (tests/torch_ref).
torch-env:
	bash scripts/torch_env.sh

# jax2onnx + onnxruntime for `ta2net export --format onnx` (jax2onnx pins an older orbax: its own venv).
onnx-env:
	bash scripts/onnx_env.sh

# apache-beam + the video libraries for `ta2net prepare|build --runner beam` (Beam pins numpy<2.5: its own venv).
beam-env:
	bash scripts/beam_env.sh

clean-demo:
	rm -rf runs/demo
