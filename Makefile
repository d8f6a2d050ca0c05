# Inboxerr: `make run` and `make test` set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install screenshots bench-subscribers bench-batches bench-admin clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) requirements.txt requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## run: web server on 127.0.0.1:8000 and one django-q2 worker on the embedded default (SQLite)
run: install
	./scripts/run.sh

## test: the whole suite on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/inboxerr)
test: install
	./scripts/test.sh

## screenshots: refresh docs/screenshots from the browser tests (1366x768)
screenshots: install
	SCREENSHOT_DIR=docs/screenshots ./scripts/test.sh -m browser

bench-subscribers: install
	$(PY) bench/subscribers.py

bench-batches: install
	$(PY) bench/batches.py

bench-admin: install
	$(PY) bench/admin.py --json bench/results-admin.json

clean:
	rm -rf $(VENV) var inboxerr.sqlite3*
