"""The outage wait's decisions (streams/llm/outage.py), on a given clock."""

import pytest

from streams.llm.outage import OutageWait, all_outage
from streams.settings import LlmSettings

DOWN = ["connection", "connection", "timeout", "http_5xx", "http_429", "circuit_open"]


def test_only_a_pass_that_failed_entirely_for_an_outage_counts():
    assert all_outage(DOWN)
    assert all_outage(["circuit_open"])  # the breaker refused: it is open for an outage
    # The server answered something: it is up, waiting will not change its answer.
    assert not all_outage(["http_5xx", "invalid_json"])
    assert not all_outage(["http_4xx"])
    assert not all_outage(["connection", "invalid_reply"])
    assert not all_outage(["no_completions"])
    assert not all_outage([])  # nothing was tried


def test_a_call_pauses_then_tries_again_until_its_wait_has_passed():
    w = OutageWait(wait_s=10.0)
    assert w.pause("fast", first_attempt=100.0, now=100.2, reasons=DOWN) == 1.0
    assert w.pause("fast", first_attempt=100.0, now=109.4, reasons=DOWN) == pytest.approx(0.6)  # what is left
    assert w.pause("fast", first_attempt=100.0, now=110.0, reasons=DOWN) is None
    assert w.gave_up("fast")


def test_a_failure_that_is_not_an_outage_falls_back_at_once():
    w = OutageWait(wait_s=60.0)
    assert w.pause("fast", first_attempt=0.0, now=0.1, reasons=["invalid_schema"]) is None
    assert w.pause("fast", first_attempt=0.0, now=0.1, reasons=["http_5xx", "http_4xx"]) is None
    assert not w.gave_up("fast")  # it did not wait for anything
    assert w.pause("fast", first_attempt=0.0, now=0.1, reasons=["http_5xx"]) == 1.0


def test_zero_never_waits():
    w = OutageWait(wait_s=0.0)
    assert w.pause("fast", first_attempt=0.0, now=0.0, reasons=DOWN) is None
    assert not w.gave_up("fast")


def test_a_long_outage_costs_the_wait_once_per_role_until_a_call_succeeds():
    w = OutageWait(wait_s=5.0, pause_s=0.5)
    assert w.pause("fast", first_attempt=0.0, now=1.0, reasons=DOWN) == 0.5
    assert w.pause("embed", first_attempt=3.0, now=4.0, reasons=DOWN) == 0.5
    assert w.pause("fast", first_attempt=0.0, now=5.1, reasons=DOWN) is None  # the first call gave up
    # A fast call that started later (still within its own wait) and a new one
    # fall back at once: the server has been away for the whole wait already.
    assert w.pause("fast", first_attempt=2.0, now=5.2, reasons=DOWN) is None
    assert w.pause("fast", first_attempt=5.3, now=5.4, reasons=DOWN) is None
    assert w.pause("embed", first_attempt=3.0, now=5.5, reasons=DOWN) == 0.5  # another role: its own wait
    w.succeeded("fast")  # the server answered again: the next outage is waited for
    assert not w.gave_up("fast")
    assert w.pause("fast", first_attempt=50.0, now=50.1, reasons=DOWN) == 0.5


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="must be >= 0"):
        OutageWait(wait_s=-1.0)
    with pytest.raises(ValueError, match="pause"):
        OutageWait(wait_s=1.0, pause_s=0.0)


def test_the_setting_defaults_to_a_minute_and_reads_the_environment(monkeypatch):
    from streams.settings import Settings

    assert LlmSettings().outage_wait_s == 60.0
    monkeypatch.setenv("MURMUR_LLM__OUTAGE_WAIT_S", "0")
    assert Settings().llm.outage_wait_s == 0.0
    with pytest.raises(ValueError):
        LlmSettings(outage_wait_s=-1)
