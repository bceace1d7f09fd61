"""Validation of a model's reply against the JSON Schema it was asked for.

Guided decoding should make replies valid already; this check catches
servers that ignore the schema, truncated output and hand-edited prompts.
It runs once per answer, so it is compiled: ``fastjsonschema`` turns a
schema into Python code once (3 us an answer where ``jsonschema``'s
interpreter took 66 us, about a tenth of the agent worker's CPU per event
in the B3 profile). ``jsonschema`` stays the reference the tests compare it
with.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Callable, TypeVar

import fastjsonschema

T = TypeVar("T")


def per_schema(make: Callable[[dict[str, Any]], T]) -> Callable[[dict[str, Any]], T]:
    """``make(schema)``, computed once per schema. Prompts share a few
    module-level schema objects, so they are found by identity first (the
    schema is kept with its value, so its id is not reused while cached),
    then by content (a schema parsed from a request is a new object each
    time): per call, hashing its canonical JSON again cost more than the
    call's own work."""
    by_identity: dict[int, tuple[dict[str, Any], T]] = {}

    @lru_cache(maxsize=64)
    def by_content(schema_json: str) -> T:
        return make(json.loads(schema_json))

    def get(schema: dict[str, Any]) -> T:
        hit = by_identity.get(id(schema))
        if hit is None or hit[0] is not schema:
            if len(by_identity) > 256:
                by_identity.clear()
            hit = by_identity[id(schema)] = (schema, by_content(json.dumps(schema, sort_keys=True)))
        return hit[1]

    return get


def validate(schema: dict[str, Any], data: Any) -> list[str]:
    """The violations of ``data`` against ``schema`` (empty when valid;
    fastjsonschema reports the first one)."""
    try:
        _validator(schema)(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        return [f"{exc.name}: {exc.message}"]
    return []


_validator = per_schema(fastjsonschema.compile)


def example_for(schema: dict[str, Any]) -> Any:
    """A minimal instance that satisfies ``schema`` (for the dev server)."""
    t = schema.get("type")
    t = t[0] if isinstance(t, list) else t
    if "enum" in schema:
        return schema["enum"][0]
    if t == "object":
        props = schema.get("properties", {})
        return {k: example_for(props.get(k, {})) for k in schema.get("required", list(props))}
    if t == "array":
        return [example_for(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if t == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if t in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        value = lo if lo is not None else (hi if hi is not None and hi < 0 else 0)
        if lo is not None and hi is not None:
            value = (lo + hi) / 2
        return int(value) if t == "integer" else float(value)
    if t == "boolean":
        return False
    return None
