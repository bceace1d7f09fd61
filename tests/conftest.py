"""Shared by every test directory: the Hypothesis profile (tests/fuzzing.py),
loaded here, before any test module is imported."""

from streams.settings import get_settings
from tests import fuzzing

fuzzing.register(get_settings().state_dir)
fuzzing.load_from_env()
