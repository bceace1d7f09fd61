"""Event time from the forms simulation engines write."""

from __future__ import annotations

from datetime import datetime, timezone

MIN_MS = 0
MAX_MS = 253402300799999  # 9999-12-31, the last instant Avro tools render


def to_ms(value: str | int | float) -> int:
    """ISO 8601 (no zone means UTC, as MiroFish writes it) or epoch millis."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a timestamp (ISO 8601 or epoch ms), got {type(value).__name__} {value!r:.40}")
    if isinstance(value, float) and value != value:
        raise ValueError("expected a timestamp, got NaN")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"timestamp out of range: {value!r}")
        ms = int(value)
    else:
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r:.60}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ms = int(dt.timestamp() * 1000)
    if not MIN_MS <= ms <= MAX_MS:
        raise ValueError(f"timestamp out of range: {value!r:.60}")
    return ms


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
