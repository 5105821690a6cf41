# One command to run, one to test; each creates the environment when missing. Packages are installed with their
# bytecode compiled: where PYTHONDONTWRITEBYTECODE is set (as on the machine this was measured on), every process would
# otherwise compile them from source again (importing a stage's stack took 19.4 s instead of 9.4 s).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(PY) -m uv

.PHONY: run demo test test-slow bench docs install install-bench clean

$(VENV)/.installed: requirements.lock pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --upgrade >/dev/null
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed requirements-bench.lock
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements-bench.lock
	touch $@

install: $(VENV)/.installed

install-bench: $(VENV)/.installed-bench

run: install
	$(VENV)/bin/qaug run

demo: install
	$(VENV)/bin/qaug demo

test: install
	$(PY) -m pytest -m "not slow"

test-slow: install
	$(PY) -m pytest -m slow

bench: install-bench
	$(PY) bench/qsim.py

# The docs/ pages as an offline site (open build/site/index.html); strict: a broken link or anchor fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis build/site
