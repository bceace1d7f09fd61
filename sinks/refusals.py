"""One bad record must not stall a sink.

A sink's write can fail because the view is away (an outage: keep the
batch unacked and retry with backoff until it is back, so nothing is lost)
or because the view refuses this record (a key longer than Cassandra
allows, a vector of the wrong dimension): retrying that forever stalls
every record behind it while lag grows. So a batch whose write fails for a
reason of its own is written again record by record; a record the view
refuses ``tries`` times in a row, while the view answers otherwise, goes to
the dead-letter topic with the error, and the batch goes on.
"""

from __future__ import annotations

import struct

from cassandra import InvalidRequest

# InvalidRequest is also what a missing table or keyspace raises: that is the
# schema's problem, not the record's, and it heals when the schema is applied.
_SCHEMA_TROUBLE = ("unconfigured table", "keyspace", "does not exist", "undefined column")


def cassandra_refused(exc: BaseException) -> bool:
    """Whether Cassandra (or the driver, binding the values) refuses this
    record's own values; everything else counts as an outage."""
    if isinstance(exc, InvalidRequest):
        text = str(exc).lower()
        return not any(t in text for t in _SCHEMA_TROUBLE)
    return isinstance(exc, (TypeError, ValueError, struct.error, OverflowError, UnicodeError))


def give_up(tries: int, max_tries: int, view_answers: bool) -> bool:
    """Dead-letter the record: it failed ``max_tries`` times on its own and
    the view is up (other records land, or it answers a read). While the
    view does not answer, the failure may be the outage: keep retrying."""
    return tries >= max_tries and view_answers
