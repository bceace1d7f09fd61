"""Which sink failures are the record's own, and when a record is given up
on (sinks/refusals.py)."""

import struct

import pytest
from cassandra import InvalidRequest, OperationTimedOut, Unavailable, WriteTimeout
from cassandra.cluster import NoHostAvailable

from sinks.refusals import cassandra_refused, give_up
from streams.errors import ServiceUnavailable


def struct_error():
    try:
        struct.pack(">H", 70_000)
    except struct.error as exc:
        return exc


@pytest.mark.parametrize("exc", [
    InvalidRequest("Error from server: code=2200 [Invalid query] message=\"Key length of 70000 is longer than maximum of 65535\""),
    struct_error(), TypeError("Received an argument of invalid type"), ValueError("bad value"),
    OverflowError("int too big"),
])
def test_the_records_own_values(exc):
    assert cassandra_refused(exc)


@pytest.mark.parametrize("exc", [
    NoHostAvailable("Unable to connect to any servers", {}), OperationTimedOut("timed out"),
    Unavailable("not enough replicas", consistency=1, required_replicas=1, alive_replicas=0),
    WriteTimeout("write timed out", consistency=1, write_type=0), ConnectionResetError(),
    ServiceUnavailable("Cassandra did not answer"),
    # the schema's problem, healed when it is applied: an outage of sorts, never the record's
    InvalidRequest("Error from server: code=2200 [Invalid query] message=\"keyspace murmur_x does not exist\""),
    InvalidRequest("unconfigured table memories_by_agent"),
])
def test_outages_and_schema_trouble_are_not_the_records(exc):
    assert not cassandra_refused(exc)


def test_give_up_only_after_the_tries_and_while_the_view_answers():
    assert not give_up(1, 3, view_answers=True)
    assert give_up(3, 3, view_answers=True)
    assert not give_up(30, 3, view_answers=False)  # the view is away: the failure may be the outage
