"""Table values as bytes: packed state, small JSON, and what Faust's json
serializer wrote before the verdict tables held bytes."""

from __future__ import annotations

import json

import pytest

from streams.state_codec import Unpacked, pack_small, pack_state, unpack_state, unpack_value


def test_every_value_form_reads_back():
    state = {"sums": {"0": [0.5, 1.0, 1, 0, 1, 0, 0, 0]}, "question": "Will it pass?"}
    assert unpack_value(pack_state(state)) == state
    assert unpack_value(pack_small(7)) == 7 and unpack_value(pack_small(True)) is True
    assert unpack_value(pack_small({"3": 1})) == {"3": 1}
    # a changelog record Faust's json serializer wrote (the verdict tables, before)
    assert unpack_value(json.dumps(state).encode()) == state and unpack_value(b"true") is True
    assert unpack_value(None) is None


def test_a_value_that_is_neither_is_an_error_not_a_guess():
    with pytest.raises(ValueError):
        unpack_value(b"\x07garbage")
    with pytest.raises(ValueError, match="unknown format"):
        unpack_state(pack_small({"a": 1}))  # the agent table takes packed state only


def test_an_unpacked_state_comes_back_only_while_the_table_holds_what_it_was_stored_as():
    cache = Unpacked(2)
    state = {"window": [1, 2]}
    packed = pack_state(state)
    cache.put(b"a", packed, state)
    assert cache.take(b"a", bytes(bytearray(packed))) is None, "an equal value read back from a changelog is another object"
    cache.put(b"a", packed, state)
    assert cache.take(b"a", packed) is state
    assert cache.take(b"a", packed) is None, "taken: a pass that fails leaves nothing behind"
    cache.put(b"a", packed, state)
    assert cache.take(b"a", None) is None and len(cache) == 0  # the table lost the key: so does the cache


def test_unpacked_states_are_bounded_oldest_first():
    cache = Unpacked(2)
    values = {k: pack_state({"k": k.decode()}) for k in (b"a", b"b", b"c")}
    for k, v in values.items():
        cache.put(k, v, {"k": k.decode()})
    assert len(cache) == 2
    assert cache.take(b"a", values[b"a"]) is None and cache.take(b"c", values[b"c"]) == {"k": "c"}
    off = Unpacked(0)
    off.put(b"a", values[b"a"], {})
    assert len(off) == 0 and off.take(b"a", values[b"a"]) is None
