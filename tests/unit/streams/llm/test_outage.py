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


# -- the transport's use of it, with a scripted send (no server) -------------------
def _caller(wait_s):
    from streams.llm.transport import HttpCaller

    return HttpCaller(LlmSettings(backend="vllm", outage_wait_s=wait_s, max_retries=0, breaker_failures=0,
                                  fallback={"fast": []}))


def _gauge():
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("murmur_llm_outage_waiting_calls", {"role": "fast"}) or 0.0


def test_a_call_cancelled_while_it_waits_leaves_the_gauge():
    import asyncio

    from streams.llm.transport import AttemptFailed

    async def send(cfg, retry):
        raise AttemptFailed("connection", "refused")

    async def go():
        task = asyncio.ensure_future(_caller(30).run("fast", send, cache_key="k"))
        await asyncio.sleep(0.2)
        waiting = _gauge()
        task.cancel()  # a worker stopping
        with pytest.raises(asyncio.CancelledError):
            await task
        return waiting

    before = _gauge()
    assert asyncio.run(go()) == before + 1 and _gauge() == before


def test_a_server_that_comes_back_saying_no_ends_the_wait_at_once():
    import asyncio
    import time

    from streams.llm import LlmUnavailable
    from streams.llm.transport import AttemptFailed

    replies = iter([AttemptFailed("http_5xx", "503: starting"), AttemptFailed("http_4xx", "400: prompt too long",
                                                                           retryable=False)])
    records = []

    async def send(cfg, retry):
        raise next(replies)

    async def go():
        caller = _caller(30)
        caller.on_call = records.append
        await caller.run("fast", send, cache_key="k")

    t0 = time.monotonic()
    with pytest.raises(LlmUnavailable, match="http_4xx.*after waiting"):
        asyncio.run(go())
    assert time.monotonic() - t0 < 5  # one pause (1 s), not the 30 s wait
    (rec,) = records
    assert rec["status"] == "failed" and rec["attempts"] == 2


def test_the_breaker_probes_several_times_within_the_wait():
    from streams.llm.outage import probe_cooldown_cap

    assert probe_cooldown_cap(60.0, 5.0, 60.0) == 15.0  # probes at about 5, 15, 30, 45, 60 s into an outage
    assert probe_cooldown_cap(60.0, 5.0, 0.0) == 60.0  # no wait: the breaker's own cap
    assert probe_cooldown_cap(60.0, 5.0, 8.0) == 5.0  # never below the first cooldown
    assert probe_cooldown_cap(10.0, 5.0, 600.0) == 10.0  # nor above the configured cap
