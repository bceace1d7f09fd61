"""Per-key table state as compact bytes: a format byte, then zstd-compressed
JSON.

A stage's state is a small document of bounded lists (windows of recent
memories with their text and int8 vectors); Faust writes a key's whole
value to the changelog on every update, so its size is what each write
costs. Compressed, an agent's state is about a seventh of its JSON (24 KB
-> 3.4 KB measured on the synthetic population), for about 0.05 ms of CPU
per write (orjson). JSON inside keeps the state readable with ``murmur tail`` tools
and tolerant of added fields (``streams.runtime.with_defaults``).
"""

from __future__ import annotations

from typing import Any

import orjson
import zstandard

FORMAT_ZSTD_JSON = b"\x01"
MAX_STATE_BYTES = 16 * 1024 * 1024  # a decompressed state larger than this is corrupt, not state

_compress = zstandard.ZstdCompressor(level=1).compress
_decompressor = zstandard.ZstdDecompressor()


def pack_state(state: Any) -> bytes:
    # orjson writes the same compact UTF-8 JSON as json.dumps(separators=(",",
    # ":"), ensure_ascii=False), twenty times faster on a full agent state
    # (5 vs 108 us): every batch writes each of its agents' states.
    return FORMAT_ZSTD_JSON + _compress(orjson.dumps(state))


def unpack_state(raw: bytes | None) -> Any:
    """The state of :func:`pack_state`; None for no state. Anything else is
    an error naming what was found (a table written by another version)."""
    if raw is None:
        return None
    if not isinstance(raw, (bytes, bytearray)) or raw[:1] != FORMAT_ZSTD_JSON:
        raise ValueError(f"table state in an unknown format (starts {bytes(raw[:4]) if isinstance(raw, (bytes, bytearray)) else type(raw).__name__!r})")
    return orjson.loads(_decompressor.decompress(bytes(raw[1:]), max_output_size=MAX_STATE_BYTES))


def pack_small(value: Any) -> bytes:
    """A small table value (a number, a short mapping) as plain JSON: not
    worth a compression frame, and what Faust's json serializer wrote."""
    return orjson.dumps(value)


def unpack_value(raw: bytes | None) -> Any:
    """A table value of :func:`pack_state` or :func:`pack_small`, or one
    Faust's json value serializer wrote (the verdict tables held decoded
    JSON before they held bytes: their changelogs still carry such records)."""
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray)) and raw[:1] == FORMAT_ZSTD_JSON:
        return unpack_state(raw)
    if isinstance(raw, (bytes, bytearray)):
        return orjson.loads(raw)
    return raw  # a value Faust decoded itself (a table still declared with its json serializer)


class Unpacked:
    """Recent states as their last writer left them, unpacked, by key, each
    with the packed value it was stored as. :meth:`take` gives one back only
    while the table still holds that very value (the same object: a table
    rebuilt from its changelog, or written by another batch, holds another),
    and removes it: the taker mutates it, and a pass that fails must leave
    nothing behind. Bounded: the least recently put go first."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: dict[Any, tuple[bytes, Any]] = {}  # insertion order: oldest first

    def take(self, key: Any, stored: bytes | None) -> Any | None:
        entry = self._entries.pop(key, None)
        return entry[1] if entry is not None and stored is not None and entry[0] is stored else None

    def put(self, key: Any, packed: bytes, state: Any) -> None:
        if self.maxsize <= 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (packed, state)
        while len(self._entries) > self.maxsize:
            del self._entries[next(iter(self._entries))]

    def __len__(self) -> int:
        return len(self._entries)
