# The README's two commands, each doing all set-up from a fresh clone:
#   make lab    install vitlib and JupyterLab into .venv, then open the notebooks
#   make test   install vitlib and the test tools (and Chromium), then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PyTorch: notebook 09 and the third Keras backend. `make lab` installs it too (the CPU build: a 192 MB download,
# 754 MB installed). Where pip would pick the CUDA build (Linux, from PyPI: several GB), choose the CPU one, e.g.
#   make lab TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider --durations=12
NBVAL := --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout 180 --nbval-cell-timeout 600 --nbval-sanitize-with tests/nbval_sanitize.cfg

# Root (containers, cloud machines) may run JupyterLab too; with no browser to open, JupyterLab prints the address
# to open, token included. LAB_OPTIONS adds options, e.g. make lab LAB_OPTIONS="--no-browser --port 9999".
LAB_OPTIONS ?=
ROOT_OPTION := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test check test-unit test-backends lint chromium notebooks site lock
lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(ROOT_OPTION) $(LAB_OPTIONS) notebooks/

test: $(VENV)/.installed-dev chromium lint
	$(BIN)/python -m vitlib
	@echo "== unit tests, notebooks (nbval) and browser test, KERAS_BACKEND=tensorflow"
	KERAS_BACKEND=tensorflow $(PYTEST) -n 2 --dist loadscope $(NBVAL) tests notebooks
	@echo "== unit tests, KERAS_BACKEND=jax and torch"
	$(MAKE) --no-print-directory test-backends

# The edit-test loop (under 2 minutes on 2 cores): lint, then the core's unit tests (the paper's modules, every
# registered layer, the error messages, the package's shape) on TensorFlow, with the speed layer off as in the suite,
# leaving out the few marked slow (make test runs them).
CORE_TESTS := $(foreach m,patches patch_embedding position_embedding attention encoder model costs layers errors structure,tests/test_$(m).py)
check: $(VENV)/.installed-dev lint
	KERAS_BACKEND=tensorflow VITLIB_SPEED=off $(PYTEST) -q -n 2 -m "not slow" $(CORE_TESTS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check vitlib tests scripts benchmarks

# The JAX and PyTorch stages leave out what runs once, in the TensorFlow stage (tests/conftest.py says why).
OTHER_BACKENDS := -m "not tensorflow_only and not backend_independent and not backend_neutral"
test-backends: $(VENV)/.installed-dev
	KERAS_BACKEND=jax $(PYTEST) -n 2 --dist loadscope $(OTHER_BACKENDS) tests
	KERAS_BACKEND=torch $(PYTEST) -n 2 --dist loadscope $(OTHER_BACKENDS) tests

# Re-run every notebook top to bottom and save it with its outputs (deterministic: seeds are fixed).
notebooks: $(VENV)/.installed-dev
	$(BIN)/python scripts/run_notebooks.py notebooks/*.ipynb

# The static site of the collection from the committed notebooks (nothing re-run) into build/site; open
# build/site/index.html. Needs the `site` extra (mkdocs and mkdocs-jupyter), which this installs.
site: $(VENV)/.installed-site
	NO_MKDOCS_2_WARNING=1 $(BIN)/python scripts/build_site.py

$(VENV)/.installed-site: pyproject.toml constraints.txt $(VENV)/.installed
	$(UV) -e ".[lab,site]"
	touch $@

# Every install is held to constraints.txt: the versions that produced the committed notebook outputs (`make lock`
# writes it from .venv). Without them: make lab CONSTRAINTS= (the newest versions pyproject.toml allows).
# uv (from PyPI, into .venv) installs the Python packages: make test's install took 96 s from an empty uv cache
# where pip took about 240 s on a 2-core machine, same versions. --compile-bytecode as pip does: where
# PYTHONDONTWRITEBYTECODE is set (many containers and CI machines), Python would otherwise compile TensorFlow's
# 1,847 modules again at every import. PyTorch alone goes through pip, which honours a pip.conf's local wheels and
# the TORCH line above (uv would fetch PyPI's CUDA build).
# uv reads no pip.conf: with a mirror set up for pip only, use pip for all: make lab UV='$(PIP)' (README).
CONSTRAINTS ?= -c constraints.txt
PIP := $(BIN)/python -m pip install --disable-pip-version-check $(CONSTRAINTS)
UV := $(BIN)/uv pip install --compile-bytecode --python $(BIN)/python $(CONSTRAINTS)

# A Python outside pyproject.toml's requires-python (3.11 to 3.13) stops the install before it starts, with one line
# saying which Python to install (scripts/check_python.py), instead of a page of resolver output.
PYTHON_PROBLEM = $(shell $(if $(wildcard $(BIN)/python),$(BIN)/python scripts/check_python.py $(BIN)/python $(VENV),\
                               $(PYTHON) scripts/check_python.py $(PYTHON)) 2>&1)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(if $(PYTHON_PROBLEM),$(error $(PYTHON_PROBLEM)))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --quiet uv
	$(UV) -e ".[lab]"
	$(PIP) $(TORCH)
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt $(VENV)/.installed
	$(UV) -e ".[lab,dev]"
	touch $@

# Pin what .venv has now (after a deliberate upgrade and a `make notebooks` run, so that the outputs match), keeping
# the file's pins for the oldest Pythons (its last section, each with a python_full_version marker).
lock:
	$(BIN)/python scripts/lock.py

# The browser tests' Chromium: Debian's package where apt-get can install it, else Playwright's own build (Ubuntu,
# whose chromium is a snap; macOS; other Linux distributions: a download from Playwright's servers into its cache).
chromium: $(VENV)/.installed-dev
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	{ command -v apt-get >/dev/null 2>&1 && \
	  echo "Installing Debian's chromium for the browser test" && \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo) && \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium && test -x /usr/bin/chromium; } || \
	{ echo "Installing Playwright's own Chromium for the browser test"; \
	  $(BIN)/python -m playwright install chromium; }
