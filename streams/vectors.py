"""Embeddings on the wire: packed float32 bytes.

``ScoredMemory.embedding_f32`` holds the vector as little-endian float32
bytes (4 bytes a dimension): Avro decodes it as one byte string, where the
older ``embedding`` (``array<float>``) costs a decode step per dimension. New
records leave ``embedding`` empty; a record written before the packed field
existed still has its vector there, and :func:`vector_of` reads either.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pack(vec: Sequence[float] | np.ndarray | bytes | None) -> bytes:
    """``vec`` as packed float32; bytes are taken as packed already."""
    if vec is None or len(vec) == 0:
        return b""
    if isinstance(vec, bytes):
        return vec
    return np.asarray(vec, dtype="<f4").tobytes()


def pack_rows(vecs: Sequence[Sequence[float]]) -> list[bytes]:
    """:func:`pack` of each vector, converted in one numpy call when they
    share a length (an embedding reply's do)."""
    if len({len(v) for v in vecs}) != 1:
        return [pack(v) for v in vecs]
    mat = np.asarray(vecs, dtype="<f4")
    return [row.tobytes() for row in mat] if mat.shape[1] else [b""] * len(vecs)


def vector_of(record: dict) -> np.ndarray:
    """The record's embedding as float32 (empty when it has none)."""
    packed = record.get("embedding_f32")
    if packed:
        return np.frombuffer(packed, dtype="<f4")
    return np.asarray(record.get("embedding") or [], dtype=np.float32)
