# Engine Room: `make run` starts everything on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MANAGE := $(PY) manage.py
BIND ?= 127.0.0.1:8000

.PHONY: run test setup assets lint bench reliability screenshots clean

run: setup
	$(MANAGE) migrate --noinput -v0
	$(MANAGE) bootstrap
	PATH="$(CURDIR)/$(BIN):$$PATH" BIND=$(BIND) $(BIN)/honcho start -f Procfile

test: setup
	scripts/test.sh

setup: $(VENV)/.installed static/vendor/.built

# The virtualenv, rebuilt whenever the lock file changes.
$(VENV)/.installed: requirements/dev.lock
	@python=$$(scripts/find-python.sh) || exit 1; \
	  echo "Using $$python ($$($$python --version))"; \
	  [ -x $(PY) ] || $$python -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.lock
	touch $@

# Front-end libraries from the npm registry, pinned by package-lock.json, copied into static/vendor.
static/vendor/.built: package-lock.json scripts/copy_assets.mjs
	npm ci --no-audit --no-fund --loglevel=error
	node scripts/copy_assets.mjs
	touch $@

assets: static/vendor/.built

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(PY) bench/run.py

reliability: setup
	ENGINE_ROOM_RELIABILITY_SIZE=large $(BIN)/pytest tests/reliability -p no:randomly

screenshots: setup
	ENGINE_ROOM_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser -k screenshots

clean:
	rm -rf $(VENV) node_modules static/vendor var
