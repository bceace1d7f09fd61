"""The dead-letter counter's reason label stays a small set: kinds of error,
never values from the bad record."""

import pytest

from streams.dead_letter import reason_label


@pytest.mark.parametrize("reason,label", [
    ("unknown schema fingerprint 1a2b3c4d5e6f7a8b", "unknown schema fingerprint #"),
    ("unknown schema fingerprint 99887766aabbccdd", "unknown schema fingerprint #"),
    ("round 12 out of range: -3", "round # out of range"),
    ("agent 'u_cyclist42' unknown: no persona", "agent '…' unknown"),
    ("ValueError: invalid literal for int() with base 10: 'five'", "ValueError"),
    ("empty message", "empty message"),
    ("", "unknown"),
])
def test_values_are_taken_out_of_the_label(reason, label):
    assert reason_label(reason) == label


def test_many_bad_records_of_one_kind_make_one_label():
    reasons = [f"unknown schema fingerprint {i:016x}" for i in range(1, 500)]
    reasons += [f"record {i} too large: {i * 1000} bytes" for i in range(500)]
    assert len({reason_label(r) for r in reasons}) == 2
