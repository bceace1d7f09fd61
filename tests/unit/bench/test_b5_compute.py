"""bench/b5_compute.py's workloads: what it cannot read is a usage error
that names it, not a traceback."""

import pytest

from bench import b5_compute


def test_a_file_that_is_not_an_oasis_database_is_named(tmp_path):
    bad = tmp_path / "run.db"
    bad.write_text("not sqlite")
    with pytest.raises(SystemExit, match="run.db: not an SQLite database"):
        b5_compute.workload(f"oasis:{bad}", quick=True)


def test_an_unknown_workload_says_which_are_known():
    with pytest.raises(SystemExit, match="unknown workload 'bogus': synthetic or oasis:PATH"):
        b5_compute.workload("bogus", quick=True)
