# Two commands for a newcomer: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 3
export JAX_PLATFORMS ?= cpu

.PHONY: demo test data install clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

data: $(STAMP)
	@OODJAX_PYTHON=$(PY) bash scripts/get_data.sh

demo: $(STAMP) data
	$(PY) -m experiments.run experiments/configs/embedded.py

# Two pytest workers (pytest-xdist): most of the suite's time is single-threaded tracing and compiling.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest tests -n $(TEST_WORKERS)

clean:
	rm -rf $(VENV) results
