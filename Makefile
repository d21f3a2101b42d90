# One environment (.venv, Python >= 3.12, pinned requirements.txt) for the demo, the tests and the tools.
PYTHON := $(shell scripts/find_python.sh)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv demo test clean-demo

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

test: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash scripts/run_tests.sh

clean-demo:
	rm -rf runs/demo
