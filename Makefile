# `make check` and `make test` are the whole setup: both create .venv from pinned versions when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
REWRITTEN := $(VENV)/.rewritten

.PHONY: check test lint artifacts nightly bench fuzz gpu-wheels venv clean bytecode

venv: $(STAMP) $(REWRITTEN)

# onnx2torch (the roundtrip extra, used by the example digits_cnn_fp32) goes in without its torchvision requirement:
# the torchvision wheels reachable here fail to import beside the CPU torch.
$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[all]'
	$(PY) -m pip install -q --no-deps -c requirements/constraints.txt onnx2torch
	touch $(STAMP)

# The package's bytecode, as `pip install` of a wheel writes it: an editable install has none, and where
# PYTHONDONTWRITEBYTECODE is set (these machines) Python would compile every module again on every gate run.
# compileall skips what is up to date, so this costs nothing when the code has not changed.
bytecode: $(STAMP) $(REWRITTEN)
	$(PY) -m compileall -q model_checks

# pytest rewrites the asserts of its plugins' modules (hypothesis, anyio, xdist, pytest-benchmark: 123 of them) as it
# imports them and keeps the result as bytecode; where none may be written it rewrote and compiled them again in every
# pytest process, 1-2 s each (every gate run, every run the tests start). One empty run, allowed to write, keeps them.
$(REWRITTEN): $(STAMP)
	d="$$(mktemp -d)" && cd "$$d" && { PYTHONDONTWRITEBYTECODE= "$(abspath $(PY))" -m pytest -q -p no:cacheprovider \
		>/dev/null || [ $$? -eq 5 ]; } && rm -rf "$$d"
	touch $@

# The gate over the example artifacts; writes reports/junit.xml and reports/summary.md.
check: $(STAMP) bytecode
	$(PY) -m pytest artifacts --model-checks artifacts --model-checks-trust-code -p no:cacheprovider \
		--junitxml=reports/junit.xml --model-checks-summary=reports/summary.md $(PYTEST_ARGS)

# The project's own tests, after the linter and the formatter's check; slow, nightly and fuzz tests are left out
# (run them by marker). The slowest tests are listed at the end.
test: $(STAMP) $(REWRITTEN)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest tests -m "not slow and not nightly and not fuzz" --durations=15 $(PYTEST_ARGS)

# The linter alone (what `make test` runs first); `ruff format .` rewrites what --check reports.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Rebuild the example artifacts deterministically from scikit-learn's digits.
artifacts: $(STAMP)
	$(PY) -m model_checks.examples artifacts

# The whole gate plus nightly tests; budgets are saved with pytest-benchmark (.benchmarks/) for the trends, and
# reports/nightly.md + reports/nightly.html are written (also to $GITHUB_STEP_SUMMARY when set).
nightly: $(STAMP) $(REWRITTEN)
	$(PY) -m pytest tests artifacts --model-checks artifacts --model-checks-trust-code -m "nightly or model_checks" --benchmark-autosave \
		--model-checks-nightly-report reports $(PYTEST_ARGS)

fuzz: $(STAMP) $(REWRITTEN)
	$(PY) -m pytest tests -m fuzz $(PYTEST_ARGS)

bench: $(STAMP) $(REWRITTEN)
	$(PY) bench/run_all.py

# Wheels (Python 3.12, manylinux x86_64) of the base requirements that the GPU machine's image lacks, for carrying
# there without a package index; bench/gpu_proof.py says how they are used.
gpu-wheels: $(STAMP)
	$(PY) -m pip download -q --only-binary=:all: --no-deps --python-version 3.12 --platform manylinux_2_28_x86_64 \
		--platform manylinux_2_17_x86_64 -d .whl -c requirements/constraints.txt \
		jsonschema jsonschema-specifications referencing rpds-py onnxoptimizer

clean:
	rm -rf $(VENV) reports/*.xml reports/*.md reports/*.html .pytest_cache
