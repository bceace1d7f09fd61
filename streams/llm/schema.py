"""Validation of a model's reply against the JSON Schema it was asked for.

Uses the ``jsonschema`` package when it is importable; otherwise a small
validator for the subset our schemas use (type, properties, required,
additionalProperties, items, minItems/maxItems, minimum/maximum,
minLength/maxLength, enum). Guided decoding should make replies valid
already; this check catches servers that ignore the schema, truncated
output and hand-edited prompts.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

try:  # optional: not a required dependency of the project
    import jsonschema as _jsonschema
except ImportError:  # pragma: no cover - depends on the environment
    _jsonschema = None

VALIDATOR = "jsonschema" if _jsonschema is not None else "subset"


def validate(schema: dict[str, Any], data: Any) -> list[str]:
    """Return the list of violations (empty when ``data`` is valid)."""
    if _jsonschema is not None:
        validator = _cached_validator(json.dumps(schema, sort_keys=True))
        return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(data)]
    return validate_subset(schema, data)


@lru_cache(maxsize=64)
def _cached_validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    cls = _jsonschema.validators.validator_for(schema)
    return cls(schema)


def _type_ok(expected: str, value: Any) -> bool:
    # bool is an int subclass in Python but not a JSON number.
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "null":
        return value is None
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True  # unknown type keyword: do not reject


def validate_subset(schema: dict[str, Any], data: Any, path: str = "$") -> list[str]:
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_type_ok(t, data) for t in types):
            return [f"{path}: expected {expected}, got {type(data).__name__}"]
    if "enum" in schema and data not in schema["enum"]:
        errors.append(f"{path}: {data!r} not in {schema['enum']}")
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        if "minimum" in schema and data < schema["minimum"]:
            errors.append(f"{path}: {data} < minimum {schema['minimum']}")
        if "maximum" in schema and data > schema["maximum"]:
            errors.append(f"{path}: {data} > maximum {schema['maximum']}")
    if isinstance(data, str):
        if "minLength" in schema and len(data) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(data) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(data, list):
        if "minItems" in schema and len(data) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(data) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if isinstance(schema.get("items"), dict):
            for i, item in enumerate(data):
                errors.extend(validate_subset(schema["items"], item, f"{path}[{i}]"))
    if isinstance(data, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in data:
                errors.append(f"{path}: missing required {name!r}")
        for name, value in data.items():
            if name in props:
                errors.extend(validate_subset(props[name], value, f"{path}.{name}"))
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected property {name!r}")
    return errors


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
