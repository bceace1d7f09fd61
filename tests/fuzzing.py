"""How many examples a property test runs: Hypothesis profiles.

``ci`` (the default, what ``make test`` runs) keeps each test at the count it
was written with, so the CI run does not grow; ``fuzz`` (``make fuzz``, the
scheduled long run) gives every fuzz test at least FUZZ_EXAMPLES. The profile
is picked by HYPOTHESIS_PROFILE or Hypothesis' own ``--hypothesis-profile``
option; tests/conftest.py registers and loads it before any test module is
imported, so a module's ``settings(...)`` is built on the loaded profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

FUZZ_EXAMPLES = 10_000
PROFILES = ("ci", "fuzz")


def register(state_dir) -> None:
    """Both profiles. ``ci`` is Hypothesis' default (100 examples, examples
    database in .hypothesis/, ignored by git); ``fuzz`` has no deadline (a
    10,000-example run hits slow examples by chance) and keeps its examples
    database under the state folder, not in the checkout, so a failure it finds
    is replayed first by the next long run."""
    settings.register_profile("ci", settings())
    settings.register_profile("fuzz", max_examples=FUZZ_EXAMPLES, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow],
                              database=DirectoryBasedExampleDatabase(str(state_dir / "hypothesis")))


def load_from_env() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if name not in PROFILES:  # a typo would silently run the short profile
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: expected one of {', '.join(PROFILES)}")
    settings.load_profile(name)
    return name


def examples(ci: int) -> int:
    """A test's example count: ``ci`` under the ci profile (its CI budget), the
    loaded profile's count when that is larger (the long run)."""
    loaded = settings.default.max_examples
    return loaded if loaded > settings.get_profile("ci").max_examples else ci
