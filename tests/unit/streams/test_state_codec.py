"""Table values as bytes: packed state, small JSON, and what Faust's json
serializer wrote before the verdict tables held bytes."""

from __future__ import annotations

import json

import pytest

from streams.state_codec import pack_small, pack_state, unpack_state, unpack_value


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
