# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test test-fast lint ui venv bench clean-demo chromium

venv: $(VENV)/.installed

# torch through pip, which follows this machine's pip configuration (the CPU build from local disk); the rest through
# uv, which installs it in about 25 s where pip takes about 60 s. pip does it all where uv cannot be installed.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	if $(PY) -m pip install -q uv 2>/dev/null; then \
	  $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e ".[test,dask,k8s]"; \
	else \
	  $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e ".[test,dask,k8s]"; \
	fi
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: venv $(DAGSTER_HOME)/dagster.yaml
	HF_HUB_OFFLINE=1 $(PY) -m examples.run_demo

# pytest-xdist workers: one more than the cores this process may use (many tests wait on dagster subprocesses, and
# the spare worker fills those waits); PYTEST_WORKERS=0 runs every test in this process.
PYTEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(len(os.sched_getaffinity(0)) + 1)")
PYTEST := HF_HUB_OFFLINE=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal

test: venv chromium
	$(PYTEST)

# The browser test drives Debian's chromium through Playwright (Playwright's own browser download is not used).
# Installed here when missing (CI runs as root); without it the browser test is skipped, not failed.
chromium:
	@[ -x /usr/bin/chromium ] || (apt-get update && apt-get install -y chromium chromium-driver) || \
	  echo "chromium could not be installed: the browser test will be skipped"

# The inner loop: everything but the tests marked slow (Dagster runs of the graph, subprocesses, the browser).
test-fast: venv
	$(PYTEST) -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

PORT ?= 3000
HOST ?= 127.0.0.1

# `dg dev`: the webserver and the daemon (schedules, sensors, run queue) on http://$(HOST):$(PORT), with the same
# DAGSTER_HOME as the demo. Without HF_ASSETS_DATALOADER_CONFIG it serves the demo, whose data (and tiny models,
# named per backend in examples/dataloader.json) it builds first when missing.
ui: venv $(DAGSTER_HOME)/dagster.yaml
	if [ -z "$$HF_ASSETS_DATALOADER_CONFIG" ]; then $(PY) -m examples.make_demo_data >/dev/null; fi
	# the instance's storage first: a webserver and a daemon creating a fresh one at once can race on its schema
	$(VENV)/bin/dagster instance migrate >/dev/null
	exec $(VENV)/bin/dg dev -h $(HOST) -p $(PORT)

bench: venv
	HF_HUB_OFFLINE=1 $(PY) bench/bench_metadata.py

clean-demo:
	rm -rf examples/demo_data $(DAGSTER_HOME)
