"""The dead-letter record: what every stage (publisher, processors, sinks)
writes to the dead-letter topic for an input it cannot use, with the raw
bytes and the reason, so nothing is dropped."""

from __future__ import annotations

import re
import time

from streams.ids import stable_id


def reason_label(reason: str) -> str:
    """The dead-letter counter's ``reason`` label: the words before the
    error's first ``:``, with quoted values, ids and numbers taken out, so the
    label has a few values (kinds of error), not one per bad record. The
    record keeps the whole reason."""
    head = reason.split(":", 1)[0]
    head = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", head)
    head = re.sub(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{6,}\b|\d+", "#", head)
    return " ".join(head.split())[:40] or "unknown"


def dead_letter_record(*, stage: str, reason: str, raw: bytes, field: str | None = None, source_ref: str | None = None,
                       source_topic: str | None = None, source_partition: int | None = None,
                       source_offset: int | None = None, sim_id: str | None = None, key: bytes | None = None,
                       error_type: str | None = None, headers=None) -> dict:
    return {
        "event_id": stable_id("dead-letter", stage, source_ref, source_topic, source_partition, source_offset, raw.hex()[:4096]),
        "ts": int(time.time() * 1000),
        "stage": stage,
        "reason": reason[:2000],
        "field": field,
        "source_topic": source_topic,
        "source_partition": source_partition,
        "source_offset": source_offset,
        "source_ref": source_ref,
        "sim_id": sim_id,
        "key": key,
        "raw": raw,
        "error_type": error_type,
        "headers": header_list(headers),
    }


def header_list(headers) -> list[dict] | None:
    """Kafka headers as the dead-letter record keeps them: a list of
    ``{key, value}`` in order (keys may repeat). Accepts what the clients
    hand out: confluent-kafka's and aiokafka's lists of pairs, or a mapping."""
    if not headers:
        return None
    pairs = headers.items() if hasattr(headers, "items") else headers
    return [{"key": k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k),
             "value": None if v is None else bytes(v) if isinstance(v, (bytes, bytearray)) else str(v).encode()}
            for k, v in pairs]
