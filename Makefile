# The two commands of the README, and what they need. Everything installs into
# .venv from pyproject.toml (the one place versions are pinned); Kafka and
# Cassandra come from Maven Central into ~/.cache/murmur and run on loopback.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup browser demo test fuzz soak long bench down lock

setup: $(VENV)/.installed

# Exactly the locked versions (hash-checked; the lock holds every transitive
# dependency, so nothing is resolved again: --no-deps, which also spares pip's
# hash mode its trouble with dependencies' extras), then Murmur itself, and
# pip check that the set is consistent.
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements-dev.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/pip check -q --disable-pip-version-check
	touch $@

# After a pin in pyproject.toml changes: re-resolve both lock files (the
# image's, requirements.lock, within the setup's, requirements-dev.lock).
UV = uv==0.13.8
LOCK = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 -q
lock:
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q '$(UV)'
	.lock-venv/bin/uv pip compile pyproject.toml --extra test $(LOCK) -o requirements-dev.lock
	.lock-venv/bin/uv pip compile pyproject.toml -c requirements-dev.lock $(LOCK) -o requirements.lock
	rm -rf .lock-venv

# Main job end to end on the embedded defaults.
demo: setup
	$(BIN)/murmur demo

# The monitor page test drives Debian's chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Schema compatibility, then unit and integration tests (the session starts
# the real services itself). The unit tests on four processes (they mostly
# wait); the integration tests on one, as they share the services and some
# stop them. Both run whatever the first gives; either failing fails.
test: setup browser
	$(BIN)/python -m schemas.compat
	$(BIN)/pytest tests/unit -n 4; unit=$$?; $(BIN)/pytest tests/integration; integration=$$?; \
	  test $$unit -eq 0 -a $$integration -eq 0

# The long fuzz run, the scheduled job (CI runs `make test`, where the same
# tests run short): every test marked fuzz (parsers, the Avro decoder, the API
# against its spec on the real services) under the fuzz Hypothesis profile,
# 10,000 examples each (the API: per operation). About 45 min on 2 cores.
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -m fuzz --hypothesis-show-statistics

# The soak (bench/soak.py): 30 min at 300 events/s through every processor, a
# fault every 150 s in rotation (each kind twice), then the verifier; figures
# in bench/results/soak.json and soak.png. About 37 min with the two replays.
soak: setup
	$(BIN)/python -m bench.soak

# The fault tests the soak's short variant covers in CI, each on its own
# (marked long; about 3 min).
long: setup
	$(BIN)/pytest -m long

# Every benchmark (B1..B8) on the real local services; figures in
# bench/results/full.json and docs/performance.md. About 35 min on 2 cores.
bench: setup
	$(BIN)/python -m bench.run

down: setup
	$(BIN)/murmur services down
