"""Avro on the wire: fastavro with the schemas in ``schemas/`` parsed once.

Two framings, both readable by any Avro tool:

* Avro single-object encoding (default): ``C3 01`` + 8-byte CRC-64-AVRO
  fingerprint (little-endian) of the writer schema + Avro binary body.
* Confluent framing when a schema registry is configured: ``00`` + 4-byte
  big-endian schema id + Avro binary body. The schema is registered under
  the subject named by the configured strategy (streams/subjects.py) for the
  topic the record is written to, so producers pass ``topic=``.

Decoding accepts either framing whatever the configuration, and resolves
older writer schemas (kept in ``schemas/history/``) against the current
reader schema, so consumers keep working across a schema upgrade.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

from schemas import SCHEMA_DIR
from streams.errors import DecodeError, EncodeError, UnknownSchemaId
from streams.subjects import SubjectStrategy, subject_name

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


@dataclass(frozen=True)
class SchemaInfo:
    name: str  # short name, e.g. "Post"
    full_name: str  # e.g. "murmur.v1.Post"
    raw: dict
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian, as written on the wire
    timestamp_fields: tuple[str, ...]  # fastavro returns datetimes; we keep ints


def _load(path: Path) -> SchemaInfo:
    raw = json.loads(path.read_text())
    # A fresh named-schema cache per file: history and current versions
    # share names and must not overwrite each other.
    parsed = fastavro.parse_schema(raw, named_schemas={})
    canonical = to_parsing_canonical_form(parsed)
    ts_fields = tuple(
        f["name"]
        for f in raw["fields"]
        if isinstance(f["type"], dict) and f["type"].get("logicalType") == "timestamp-millis"
    )
    return SchemaInfo(
        name=raw["name"],
        full_name=f"{raw['namespace']}.{raw['name']}",
        raw=raw,
        parsed=parsed,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        timestamp_fields=ts_fields,
    )


@lru_cache(maxsize=1)
def current_schemas() -> dict[str, SchemaInfo]:
    """Current schema per short name."""
    return {info.name: info for info in map(_load, sorted(SCHEMA_DIR.glob("*.avsc")))}


@lru_cache(maxsize=1)
def _by_fingerprint() -> dict[bytes, SchemaInfo]:
    table = {info.fingerprint: info for info in current_schemas().values()}
    history = SCHEMA_DIR / "history"
    if history.is_dir():
        for path in sorted(history.glob("*/*.avsc")):
            info = _load(path)
            table.setdefault(info.fingerprint, info)
    return table


def schema_names() -> list[str]:
    return sorted(current_schemas())


def _ms(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value


class AvroSerde:
    """Encode and decode Murmur events.

    ``registry`` is anything with ``id_for(subject, schema) -> int`` and
    ``schema_for(id) -> dict`` (see :mod:`streams.schema_registry`); when it is
    None, single-object encoding is used. ``shared_topics`` are the topics
    that carry several record types (see :func:`streams.subjects.subject_name`).
    """

    def __init__(self, registry: Any | None = None, *, subject_strategy: SubjectStrategy = "topic",
                 shared_topics: frozenset[str] = frozenset()) -> None:
        self._schemas = current_schemas()
        self._registry = registry
        self._strategy = subject_strategy
        self._shared = shared_topics
        self._registry_parsed: dict[int, Any] = {}
        # The 5-byte Confluent header per (topic, type): one registry call per
        # pair for the life of the process, a dict lookup per record after that.
        self._headers: dict[tuple[str | None, str], bytes] = {}

    def schema(self, type_name: str):
        """The parsed (fastavro) schema of an event type, None if unknown."""
        info = self._schemas.get(type_name)
        return info.parsed if info is not None else None

    # -- encoding -----------------------------------------------------------
    def encode(self, type_name: str, record: dict, *, topic: str | None = None, check: bool = False) -> bytes:
        info = self._schemas.get(type_name)
        if info is None:
            raise EncodeError(f"unknown event type {type_name!r}; known: {', '.join(schema_names())}")
        if check:
            try:
                validate(record, info.parsed, raise_errors=True)
            except ValidationError as exc:
                raise EncodeError(f"{type_name}: {exc}", field=_field_of(exc)) from None
        buf = io.BytesIO()
        if self._registry is not None:
            buf.write(self._header(info, topic))
        else:
            buf.write(SINGLE_OBJECT_MAGIC + info.fingerprint)
        try:
            fastavro.schemaless_writer(buf, info.parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error) as exc:
            raise EncodeError(f"{type_name}: cannot encode: {exc}") from None
        return buf.getvalue()

    def _header(self, info: SchemaInfo, topic: str | None) -> bytes:
        header = self._headers.get((topic, info.name))
        if header is None:
            subject = subject_name(self._strategy, topic=topic, record_name=info.full_name,
                                   shared=topic in self._shared)
            header = CONFLUENT_MAGIC + struct.pack(">I", self._registry.id_for(subject, info.raw))
            self._headers[(topic, info.name)] = header
        return header

    def reframe(self, data: bytes, type_name: str, topic: str) -> bytes:
        """The record ``data`` (from :meth:`encode`) as written to ``topic``:
        the same bytes without a registry, else the header of that topic's
        subject. Lets one record go to several topics without re-encoding."""
        if self._registry is None:
            return data
        return self._header(self._schemas[type_name], topic) + data[5:]

    # -- decoding -----------------------------------------------------------
    def decode(self, data: bytes | None, expected: str | tuple[str, ...] | None = None) -> tuple[str, dict]:
        """Return ``(type_name, record)``; raise :class:`DecodeError` on anything bad."""
        if not data:
            raise DecodeError("empty message")
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < 10:
                raise DecodeError("truncated single-object header")
            writer = _by_fingerprint().get(data[2:10])
            if writer is None:
                raise DecodeError(f"unknown schema fingerprint {data[2:10].hex()}")
            name, writer_parsed, body = writer.name, writer.parsed, data[10:]
        elif data[:1] == CONFLUENT_MAGIC:
            if len(data) < 5:
                raise DecodeError("truncated Confluent header")
            schema_id = struct.unpack(">I", data[1:5])[0]
            name, writer_parsed = self._registry_schema(schema_id)
            body = data[5:]
        else:
            raise DecodeError(f"not a Murmur Avro message (first byte 0x{data[0]:02x})")
        if expected is not None:
            wanted = (expected,) if isinstance(expected, str) else expected
            if name not in wanted:
                raise DecodeError(f"wrong schema: got {name}, expected {' or '.join(wanted)}")
        reader = self._schemas.get(name)
        if reader is None:
            raise DecodeError(f"no current schema for {name}")
        stream = io.BytesIO(body)
        try:
            record = fastavro.schemaless_reader(stream, writer_parsed, reader.parsed)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"{name}: corrupt Avro body: {type(exc).__name__}: {exc}") from None
        if stream.tell() != len(body):
            raise DecodeError(f"{name}: {len(body) - stream.tell()} trailing bytes after the record")
        for field in reader.timestamp_fields:
            record[field] = _ms(record.get(field))
        return name, record

    def _registry_schema(self, schema_id: int) -> tuple[str, Any]:
        if self._registry is None:
            raise DecodeError(f"Confluent-framed message (schema id {schema_id}) but no schema registry is configured (MURMUR_SCHEMA_REGISTRY_URL)")
        if schema_id not in self._registry_parsed:
            try:
                raw = self._registry.schema_for(schema_id)
            except UnknownSchemaId as exc:
                # A record nobody can read: bad input. A registry that cannot
                # be reached (ServiceUnavailable) propagates instead, so an
                # outage does not send good records to the dead-letter topic.
                raise DecodeError(str(exc)) from None
            self._registry_parsed[schema_id] = (raw["name"].rsplit(".", 1)[-1], fastavro.parse_schema(raw, named_schemas={}))
        return self._registry_parsed[schema_id]


def _field_of(exc: ValidationError) -> str | None:
    # fastavro's message is a JSON list of "path is <value> of type ... expected ..."
    text = str(exc)
    marker = "murmur.v1."
    if marker in text:
        tail = text.split(marker, 1)[1]
        path = tail.split(" ", 1)[0]
        return path.split(".", 1)[1] if "." in path else None
    return None


@lru_cache(maxsize=1)
def default_serde() -> AvroSerde:
    """The process-wide serde built from settings (registry when configured)."""
    from streams.settings import get_settings

    settings = get_settings()
    return registry_serde(settings) if settings.schema_registry_url else AvroSerde()


def registry_serde(settings) -> AvroSerde:
    """A serde writing Confluent framing through the registry of ``settings``."""
    from streams.schema_registry import SchemaRegistry
    from streams.topics import ALL, LEGACY

    shared = frozenset(spec.name for spec in (*ALL, *LEGACY) if len(spec.types) > 1)
    return AvroSerde(SchemaRegistry.from_settings(settings), subject_strategy=settings.schema_registry_subject_strategy,
                     shared_topics=shared)


EncodeFn = Callable[[str, dict], bytes]
