# The README's two commands, each doing all set-up from a fresh clone:
#   make lab    install vitlib and JupyterLab into .venv, then open the notebooks
#   make test   install vitlib and the test tools (and Chromium), then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The PyTorch backend is tested with the CPU build; a plain `torch` would pull several GB of CUDA libraries.
TORCH ?= torch==2.13.0
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
NBVAL := --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout 180 --nbval-cell-timeout 600 --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: lab test test-unit test-backends chromium notebooks
lab: $(VENV)/.installed
	$(BIN)/jupyter lab notebooks/

test: $(VENV)/.installed-dev chromium
	$(BIN)/python -m vitlib
	@echo "== unit tests, notebooks (nbval) and browser test, KERAS_BACKEND=tensorflow"
	KERAS_BACKEND=tensorflow $(PYTEST) -n 2 --dist loadscope $(NBVAL) tests notebooks
	@echo "== unit tests, KERAS_BACKEND=jax and torch"
	$(MAKE) --no-print-directory test-backends

test-backends: $(VENV)/.installed-dev
	KERAS_BACKEND=jax $(PYTEST) -n 2 --dist loadscope -m "not tensorflow_only" tests
	KERAS_BACKEND=torch $(PYTEST) -n 2 --dist loadscope -m "not tensorflow_only" tests

# Re-run every notebook top to bottom and save it with its outputs (deterministic: seeds are fixed).
notebooks: $(VENV)/.installed-dev
	$(BIN)/python scripts/run_notebooks.py notebooks/*.ipynb

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -e ".[dev]" "$(TORCH)"
	touch $@

chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the browser test"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }
