"""Faust's stall warnings count from when work began waiting, not from the
last event before an idle spell (streams/faust_consumer.py ConsumerThread)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from streams.faust_consumer import ConsumerThread, busy_for

TIMEOUT = 300.0
tp = TP("sim.agent-log.v1", 0)


def test_busy_for_counts_from_the_last_caught_up_check_or_the_start():
    assert busy_for(1000.0, 990.0, 0.0) == 10.0
    assert busy_for(1000.0, None, 400.0) == 600.0


@pytest.fixture
def thread(monkeypatch):
    """A ConsumerThread with its consumer's partition state under the test's control."""
    faust_checks, fetch_checks = [], []
    monkeypatch.setattr(aiokafka_driver.AIOKafkaConsumerThread, "verify_event_path",
                        lambda self, now, tp: faust_checks.append(now))
    state = SimpleNamespace(highwater=100, position=100)
    t = ConsumerThread.__new__(ConsumerThread)
    t._caught_up_at = {}
    t.time_started = 0.0
    t.tp_stream_timeout_secs = t.tp_commit_timeout_secs = TIMEOUT
    assignment = SimpleNamespace(state_value=lambda _tp: state)
    consumer = SimpleNamespace(_fetcher=SimpleNamespace(_subscriptions=SimpleNamespace(
        subscription=SimpleNamespace(assignment=assignment))))
    t._ensure_consumer = lambda: consumer
    t._verify_aiokafka_event_path = lambda now, tp: fetch_checks.append(now)
    return t, state, faust_checks, fetch_checks


def test_traffic_after_an_idle_spell_is_not_a_stall(thread):
    t, state, faust_checks, fetch_checks = thread
    for now in range(10, 1210, 5):         # 20 minutes of silence, checked every few seconds
        t.verify_event_path(float(now), tp)  # caught up: Faust's own checks run (nothing to report)
    assert len(faust_checks) == 240
    state.highwater = 150                  # then new messages, not read yet at the next check
    t.verify_event_path(1210.0, tp)        # work has waited since the last check, not for 20 minutes
    assert len(faust_checks) == 240 and fetch_checks == [1210.0]


def test_work_waiting_for_the_whole_timeout_is_still_reported(thread):
    t, state, faust_checks, _ = thread
    t.verify_event_path(10.0, tp)
    state.highwater = 150
    t.verify_event_path(12.0, tp)
    t.verify_event_path(10.0 + TIMEOUT + 1, tp)   # still waiting: a real stall, Faust says so
    assert faust_checks == [10.0, 10.0 + TIMEOUT + 1]


def test_never_caught_up_since_start_counts_from_the_start(thread):
    t, state, faust_checks, _ = thread
    state.highwater = 150
    t.verify_event_path(TIMEOUT - 1, tp)
    assert faust_checks == []
    t.verify_event_path(TIMEOUT + 1, tp)
    assert faust_checks == [TIMEOUT + 1]
