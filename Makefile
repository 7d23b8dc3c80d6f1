# The two commands: `make run` serves the app with default atlases, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: run test test-fast test-deploy install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -c constraints.txt torch torchvision
	$(PY) -m pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/qkatlas demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not e2e"

# The container built and run (tests/deploy/run.sh, docs/deploy.md): slow, kept out of `make test`.
test-deploy:
	bash tests/deploy/run.sh

clean:
	rm -rf $(VENV) .cache atlases
