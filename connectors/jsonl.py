"""Murmur's own JSONL: one typed event per line.

``{"type": "Post", "sim_id": ..., "round": ..., "ts": ..., ...}``: the fields
of ``schemas/<type>.avsc``; ``ts`` may be epoch millis or ISO 8601; a missing
``event_id`` is derived from the line's content; keys starting with ``_``
(what ``murmur tail --format json`` adds: topic, partition, offset) are ignored,
so tailed output can be published again.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterator

from fastavro.validation import ValidationError, validate

from connectors.events import BadLine, OutEvent
from connectors.timeparse import to_ms
from streams.ids import stable_id
from streams.serde import current_schemas
from streams.topics import SOURCES, agent_key, sim_key

PUBLISHABLE = {spec.value: spec for spec in SOURCES}


def parse_file(path: Path, *, sim_id: str | None = None) -> Iterator[OutEvent | BadLine]:
    schemas = current_schemas()
    seen: Counter[str] = Counter()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            ref = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield BadLine(ref, f"invalid JSON: {exc.msg} at column {exc.colno}", bytes(raw), sim_id=sim_id)
                continue
            except UnicodeDecodeError as exc:
                yield BadLine(ref, f"invalid UTF-8 at byte {exc.start}", bytes(raw), sim_id=sim_id)
                continue
            if not isinstance(obj, dict):
                yield BadLine(ref, f"expected a JSON object, got {type(obj).__name__}", bytes(raw), sim_id=sim_id)
                continue
            type_name = obj.pop("type", None)
            spec = PUBLISHABLE.get(type_name)
            if spec is None:
                yield BadLine(ref, f"unknown or unpublishable type {type_name!r}; expected one of {sorted(PUBLISHABLE)}", bytes(raw), field="type", sim_id=sim_id)
                continue
            record = {k: v for k, v in obj.items() if not k.startswith("_")}
            if sim_id is not None:
                record["sim_id"] = sim_id
            try:
                if "ts" in record and not isinstance(record["ts"], bool):
                    record["ts"] = to_ms(record["ts"])
            except (ValueError, TypeError) as exc:
                yield BadLine(ref, str(exc), bytes(raw), field="ts", sim_id=record.get("sim_id"))
                continue
            if not record.get("event_id"):
                canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
                seen[canonical] += 1
                record["event_id"] = stable_id("jsonl", type_name, canonical, seen[canonical])
            schema = schemas[type_name]
            unknown = sorted(set(record) - {f["name"] for f in schema.raw["fields"]})
            if unknown:
                yield BadLine(ref, f"unknown field for {type_name}", bytes(raw), field=unknown[0], sim_id=record.get("sim_id"))
                continue
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
                yield BadLine(ref, reason, bytes(raw), field=field, sim_id=record.get("sim_id"))
                continue
            if spec.key == "sim_id":
                key = sim_key(record["sim_id"])
            else:
                key = agent_key(record["sim_id"], record["agent_id"])
            yield OutEvent(spec, key, record, ref)


def _bad_field(exc: ValidationError) -> str | None:
    text = str(exc)
    for token in text.replace('"', " ").split():
        if token.startswith("murmur.v1.") and token.count(".") >= 3:
            return token.split(".", 3)[3]
    return None
