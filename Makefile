# mmoanet: `make demo` runs the main job, `make test` the tests. Both create or
# reuse the virtual environment in $(VENV) first (see tools/misc/setup_env.sh).
#
#   make test                         # lint + CPU test suite
#   make demo                         # synthetic data -> train -> PQ table
#   make wheel-check                  # the built wheel in a fresh venv runs
#                                     # docs/installation.md's mim commands
#   make TORCH_SPEC='torch==2.4.1' test   # another torch build (e.g. CUDA)
#
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmoanet-ready
LINT_PATHS := mmoanet configs tools tests setup.py

export PYTHON VENV TORCH_SPEC

.PHONY: env test lint pytest demo wheel-check clean-env

# The stamp is remade only when an input of the set-up changes, so a second
# `make test` costs a file-date comparison, not a pip resolve.
$(STAMP): tools/misc/setup_env.sh tools/misc/requirements_satisfied.py \
		requirements/build.txt requirements/mmcv.txt \
		requirements/runtime.txt requirements/tests.txt \
		requirements/demo.txt requirements/deploy.txt \
		requirements/python_versions.txt setup.py
	@bash tools/misc/setup_env.sh
	@touch $@

env: $(STAMP)

lint: $(STAMP)
	@echo '[lint] flake8, isort, yapf'
	@$(VENV)/bin/flake8 $(LINT_PATHS)
	@$(VENV)/bin/isort --check-only --diff $(LINT_PATHS)
	@$(VENV)/bin/yapf --diff --recursive $(LINT_PATHS)

pytest: $(STAMP)
	@$(PY) -m pytest tests

test: lint pytest

demo: $(STAMP)
	@$(PY) tools/demo.py

wheel-check: $(STAMP)
	@bash .ci/wheel_check.sh

clean-env:
	rm -rf $(VENV)
