"""Page cursors are Cassandra paging states signed for their list: nothing
the API did not hand out reaches Cassandra (which answers an unreadable
paging state with a protocol error and drops the connection)."""

import pytest

from sinks.cassandra_store import BadCursor, make_cursor, read_cursor

KEY = b"k" * 32


def test_a_cursor_reads_back_for_its_own_list_only():
    cursor = make_cursor(KEY, "timeline", ("s1",), b"\x00\x01state")
    assert read_cursor(KEY, "timeline", ("s1",), cursor) == b"\x00\x01state"
    for name, params in (("timeline", ("s2",)), ("memories", ("s1",))):
        with pytest.raises(BadCursor, match="for this list"):
            read_cursor(KEY, name, params, cursor)
    with pytest.raises(BadCursor):
        read_cursor(b"x" * 32, "timeline", ("s1",), cursor)  # another process's key


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", "!!.??", "AAAA.AAAA"])
def test_anything_else_is_refused_before_cassandra(bad):
    with pytest.raises(BadCursor):
        read_cursor(KEY, "timeline", ("s1",), bad)
