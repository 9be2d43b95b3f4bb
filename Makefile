# The README's two commands (`make demo`, `make test`) and their helpers.
# Everything is set up from a fresh Debian machine with python3: a venv in .venv with simkit and
# its test dependencies, and Debian's prometheus package (the live and differential tests start a
# real Prometheus 2.42 on 127.0.0.1).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: demo test setup prometheus promql-testdata lint typecheck unit bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[live,test,parquet,dask]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

# Debian's prometheus (2.42) when it is missing; the tests start it themselves on 127.0.0.1.
prometheus:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends prometheus; \
	fi

# Prometheus 2.42's own PromQL test files (promql/testdata/*.test), from Debian's prometheus
# 2.42.0+ds source package through the machine's configured mirrors (apt's configuration is left
# as it is: private deb-src lists), cached in ~/.cache/simkit/prometheus-2.42, never in the repo.
promql-testdata: $(STAMP)
	$(BIN)/python -m tests.support.prometheus_source

demo: $(STAMP)
	$(BIN)/simkit run scenarios/iris-abtest --out out/iris-abtest

lint: $(STAMP)
	$(BIN)/ruff check simkit tests benchmarks
	$(BIN)/ruff format --check simkit tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy simkit

test: $(STAMP) prometheus promql-testdata lint typecheck
	$(BIN)/python -m pytest -q -ra

bench: $(STAMP) prometheus
	$(BIN)/python benchmarks/sim_engine.py
	$(BIN)/python benchmarks/engines.py
	$(BIN)/python benchmarks/promql.py
	$(BIN)/python benchmarks/sweep.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python -m pytest -q -m bench

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
