"""Murmur's own JSONL: one typed event per line.

``{"type": "Post", "sim_id": ..., "round": ..., "ts": ..., ...}``: the fields
of ``schemas/<type>.avsc``; ``ts`` may be epoch millis or ISO 8601; a missing
``event_id`` is derived from the line's content (an exact duplicate line is
the same event: skipped and counted); keys starting with ``_``
(what ``murmur tail --format json`` adds: topic, partition, offset) are ignored,
so tailed output can be published again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from fastavro.validation import ValidationError, validate

from connectors.events import BadLine, OutEvent, Skipped
from connectors.timeparse import to_ms
from streams.ids import stable_id
from streams.serde import current_schemas
from streams.topics import ROUTES, agent_key, sim_key

PUBLISHABLE = {type_name: routes[0] for type_name, routes in ROUTES.items()}


class LineParser:
    """Lines of one Murmur JSONL file, in order (duplicates of a line without
    an ``event_id`` get the same derived id, and are skipped and counted)."""

    def __init__(self, *, sim_id: str | None = None, label: str = "") -> None:
        self.sim_id = sim_id
        self.label = label
        self.schemas = current_schemas()
        self._seen: set[str] = set()
        self.ended: set[str] = set()

    def line(self, raw: bytes, lineno: int) -> OutEvent | BadLine | Skipped | None:
        ref = f"{self.label}:{lineno}"
        sim_id = self.sim_id
        if not raw.strip():
            return None
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            return BadLine(ref, f"invalid JSON: {exc.msg} at column {exc.colno}", bytes(raw), sim_id=sim_id)
        except UnicodeDecodeError as exc:
            return BadLine(ref, f"invalid UTF-8 at byte {exc.start}", bytes(raw), sim_id=sim_id)
        if not isinstance(obj, dict):
            return BadLine(ref, f"expected a JSON object, got {type(obj).__name__}", bytes(raw), sim_id=sim_id)
        type_name = obj.pop("type", None)
        spec = PUBLISHABLE.get(type_name) if isinstance(type_name, str) else None
        if spec is None:
            return BadLine(ref, f"unknown or unpublishable type {type_name!r}; expected one of {sorted(PUBLISHABLE)}",
                           bytes(raw), field="type", sim_id=sim_id)
        record = {k: v for k, v in obj.items() if not k.startswith("_")}
        if sim_id is not None:
            record["sim_id"] = sim_id
        try:
            if "ts" in record and not isinstance(record["ts"], bool):
                record["ts"] = to_ms(record["ts"])
        except (ValueError, TypeError) as exc:
            return BadLine(ref, str(exc), bytes(raw), field="ts", sim_id=record.get("sim_id"))
        if not record.get("event_id"):
            canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
            record["event_id"] = stable_id("jsonl", type_name, canonical)
        if record["event_id"] in self._seen:
            return Skipped(ref, "duplicate line")
        schema = self.schemas[type_name]
        unknown = sorted(set(record) - {f["name"] for f in schema.raw["fields"]})
        if unknown:
            return BadLine(ref, f"unknown field for {type_name}", bytes(raw), field=unknown[0], sim_id=record.get("sim_id"))
        # Fill schema defaults so validation judges only what is missing.
        for f in schema.raw["fields"]:
            if f["name"] not in record and "default" in f:
                record[f["name"]] = f["default"]
        try:
            validate(record, schema.parsed, raise_errors=True)
        except ValidationError as exc:
            missing = [f["name"] for f in schema.raw["fields"] if f["name"] not in record]
            field = missing[0] if missing else _bad_field(exc)
            reason = "missing required field" if missing else f"does not match {type_name} schema"
            return BadLine(ref, reason, bytes(raw), field=field, sim_id=record.get("sim_id"))
        self._seen.add(record["event_id"])
        if spec.key == "sim_id":
            key = sim_key(record["sim_id"])
        else:
            key = agent_key(record["sim_id"], record["agent_id"])
        if type_name == "RoundMarker" and record["kind"] == "simulation_end":
            self.ended.add(record.get("platform") or "")
        return OutEvent(spec, key, record, ref, type=type_name)


def parse_file(path: Path, *, sim_id: str | None = None) -> Iterator[OutEvent | BadLine | Skipped]:
    """A finished file, line by line (``connectors.sources`` reads growing ones)."""
    parser = LineParser(sim_id=sim_id, label=str(path))
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            item = parser.line(raw, lineno)
            if item is not None:
                yield item


def _bad_field(exc: ValidationError) -> str | None:
    text = str(exc)
    for token in text.replace('"', " ").split():
        if token.startswith("murmur.v1.") and token.count(".") >= 3:
            return token.split(".", 3)[3]
    return None
