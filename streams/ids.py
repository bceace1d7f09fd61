"""Deterministic ids: the same input always yields the same id, so a
re-publish, a redelivery or a replay writes the same rows."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson


_INT64 = 2 ** 63


def stable_id(*parts: Any) -> str:
    """32 hex chars of SHA-256 over the parts' canonical JSON."""
    if all(p is None or isinstance(p, (str, bool)) or (isinstance(p, int) and -_INT64 <= p < _INT64) for p in parts):
        # The usual parts (ids, names, counts): orjson writes them as the
        # json call below does, byte for byte (tests/unit/streams/
        # test_stable_ids.py), in a tenth of the time.
        return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:32]
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def point_uuid(event_id: str) -> str:
    """Qdrant point id (a UUID string) derived from an event id."""
    h = hashlib.sha256(event_id.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
