"""Committing a new group's start offsets waits out a coordinator being
elected (a cluster just started answers NOT_COORDINATOR for a moment)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams import kafka
from streams.settings import Settings


class Consumer:
    def __init__(self, failures: list[int]):
        self.failures, self.commits, self.closed = failures, 0, False

    def commit(self, offsets, asynchronous):
        self.commits += 1
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0)))
        return offsets

    def close(self):
        self.closed = True


def run(monkeypatch, failures: list[int]) -> Consumer:
    consumer = Consumer(failures)
    monkeypatch.setattr(kafka, "end_offsets", lambda settings, topics: {("t", 0): 7})
    monkeypatch.setattr(kafka, "make_consumer", lambda settings, group=None, **kw: consumer)
    monkeypatch.setattr("time.sleep", lambda s: None)
    kafka.start_group_at_end(Settings(), "g", ["t"])
    return consumer


def test_a_coordinator_being_elected_is_waited_for(monkeypatch):
    c = run(monkeypatch, [KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS])
    assert c.commits == 3 and c.closed


def test_another_error_is_raised_at_once(monkeypatch):
    with pytest.raises(KafkaException):
        run(monkeypatch, [KafkaError.GROUP_AUTHORIZATION_FAILED])
