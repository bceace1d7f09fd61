"""The publisher refuses a record Kafka would refuse (settings.max_record_bytes)
as a dead letter, and goes on with the rest (no broker: dry run)."""

from bench.common import post_events
from connectors.publisher import Publisher


def test_an_oversized_record_is_dead_lettered_and_the_rest_published():
    events = post_events("s", 3, agents=2)
    events[1].record["content"] = "x" * 1_000_001
    errors = []
    counts = Publisher(None, dry_run=True, on_error=errors.append).publish(events)
    assert counts.published == {"Post": 2} and counts.dead_lettered == 1
    (reason,) = counts.dead_letter_reasons
    assert reason == "record over the size limit"  # counted by kind; the message has the numbers
    assert len(errors) == 1 and "over the size limit: 1,000," in errors[0] and "MURMUR_MAX_RECORD_BYTES" in errors[0]
