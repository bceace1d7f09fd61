# The two commands of the README, and what they need. Everything installs into
# .venv from pyproject.toml (the one place versions are pinned); Kafka and
# Cassandra come from Maven Central into ~/.cache/murmur and run on loopback.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup browser demo test bench down

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

# Main job end to end on the embedded defaults.
demo: setup
	$(BIN)/murmur demo

# The monitor page test drives Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Schema compatibility, then unit and integration tests (the session starts
# the real services itself).
test: setup browser
	$(BIN)/python -m schemas.compat
	$(BIN)/pytest

# Every benchmark (B1..B7) on the real local services; figures in
# bench/results/full.json and docs/performance.md. About 25 min on 2 cores.
bench: setup
	$(BIN)/python -m bench.run

down: setup
	$(BIN)/murmur services down
