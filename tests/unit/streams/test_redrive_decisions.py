"""What a redrive sends back and what it skips (streams/redrive.py), without Kafka."""

from __future__ import annotations

import pytest

from streams.dead_letter import dead_letter_record, header_list
from streams.redrive import (COUNT_HEADER, OF_HEADER, Filters, decide, not_redrivable, parse_since, progress_group,
                             redrive_count, redrive_headers)
from streams.serde import default_serde
from streams.settings import Settings


def processor_letter(**kw) -> dict:
    args = dict(stage="agent", reason="ServiceUnavailable: the model did not answer", raw=b"\xc3\x01record",
                source_topic="sim.agent-log.v1", source_partition=2, source_offset=41, key=b"s/a",
                error_type="ServiceUnavailable", headers=[("trace", b"t1")])
    args.update(kw)
    return dead_letter_record(**args)


def test_a_processor_dead_letter_kept_whole_is_redriven():
    assert decide(processor_letter(), Filters(), limit=3) is None


@pytest.mark.parametrize("letter, why", [
    (dict(stage="publisher", source_topic=None, source_partition=None, source_offset=None, key=None,
          error_type=None, headers=None), "publisher input"),
    (dict(raw=b""), "not kept whole"),
    (dict(source_offset=None), "not kept whole"),
    (dict(error_type="DecodeError"), "broke the contract"),
])
def test_what_cannot_be_redriven_says_why(letter, why):
    assert why in not_redrivable(processor_letter(**letter))
    assert why in decide(processor_letter(**letter), Filters(), limit=3)


def test_old_dead_letters_without_the_new_fields_are_redrivable():
    old = processor_letter()
    del old["error_type"], old["headers"]
    assert decide(old, Filters(), limit=3) is None and redrive_count(old) == 0


def test_filters():
    dl = processor_letter()
    assert decide(dl, Filters(reason="model DID not"), limit=3) is None
    assert "--reason" in decide(dl, Filters(reason="KeyError"), limit=3)
    assert "--source-topic" in decide(dl, Filters(source_topic="memory.scored.v1"), limit=3)
    assert decide(dl, Filters(since_ms=dl["ts"]), limit=3) is None
    assert "--since" in decide(dl, Filters(since_ms=dl["ts"] + 1), limit=3)


def test_the_count_header_goes_up_and_the_limit_stops_it():
    dl = processor_letter()
    headers = redrive_headers(dl)
    assert headers == [("trace", b"t1"), (COUNT_HEADER, b"1"), (OF_HEADER, dl["event_id"].encode())]
    # It fails again: the new dead letter carries the headers it was read with.
    for n in (1, 2):
        dl = processor_letter(headers=redrive_headers(dl))
        assert redrive_count(dl) == n and decide(dl, Filters(), limit=3) is None
    dl = processor_letter(headers=redrive_headers(dl))
    assert redrive_count(dl) == 3
    assert "redriven 3 times already" in decide(dl, Filters(), limit=3)
    assert [k for k, _ in redrive_headers(dl)].count(COUNT_HEADER) == 1  # replaced, not piled up


def test_headers_survive_the_dead_letter_schema():
    serde = default_serde()
    dl = processor_letter(headers={"a": b"1", "b": None})
    _, back = serde.decode(serde.encode("DeadLetter", dl), "DeadLetter")
    assert back["headers"] == [{"key": "a", "value": b"1"}, {"key": "b", "value": None}]
    assert back["error_type"] == "ServiceUnavailable"
    assert header_list(None) is None and header_list([(b"k", b"v")]) == [{"key": "k", "value": b"v"}]


def test_progress_is_one_group_per_filter_but_not_per_since():
    s = Settings()
    plain = progress_group(s, Filters())
    assert plain.endswith("redrive")
    assert progress_group(s, Filters(since_ms=5)) == plain
    by_reason = progress_group(s, Filters(reason="KeyError"))
    assert by_reason != plain and by_reason == progress_group(s, Filters(reason="KeyError", since_ms=7))
    assert progress_group(s, Filters(source_topic="x")) not in (plain, by_reason)
    assert progress_group(s.model_copy(update={"namespace": "ns1"}), Filters()).startswith("ns1-")


def test_since():
    now = 10_000_000
    assert parse_since("30m", now_ms=now) == now - 30 * 60_000
    assert parse_since("2h", now_ms=now) == now - 7_200_000
    assert parse_since("1700000000000", now_ms=now) == 1_700_000_000_000
    assert parse_since("2026-12-05T03:00:00Z", now_ms=now) == parse_since("2026-12-05T03:00:00", now_ms=now)
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday", now_ms=now)
