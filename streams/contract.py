"""Rules of the event contract that Avro types cannot express (ranges,
non-empty ids). Checked where data enters (publisher) and where it is read
(processors), so a bad record is a dead letter, never a crash."""

from __future__ import annotations

from streams.errors import DecodeError


def check_ranges(type_name: str, record: dict) -> None:
    """Values the Avro types allow but the contract does not."""
    if record.get("round", 0) < -1:
        raise DecodeError(f"{type_name}: round out of range: {record['round']}", field="round")
    if not record.get("event_id"):
        raise DecodeError(f"{type_name}: empty event_id", field="event_id")
    if "sim_id" in record and not record["sim_id"] and type_name not in ("LlmCall", "Checkpoint"):
        raise DecodeError(f"{type_name}: empty sim_id", field="sim_id")
    if type_name == "ScoredMemory" and not 1 <= record["importance"] <= 10:
        raise DecodeError(f"ScoredMemory: importance out of range: {record['importance']}", field="importance")
    if type_name == "Persona":
        for name in ("conviction", "credibility"):
            if not 0.0 <= record[name] <= 1.0:
                raise DecodeError(f"Persona: {name} out of range: {record[name]}", field=name)
