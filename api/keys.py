"""Issued API keys: their format, their hash and their table.

A key reads ``mk_<id>_<secret>``: ``id`` (12 hex digits) names its row in
the ``api_keys`` table, so a request's key is found by one read, without a
scan; ``secret`` is 32 random bytes (base64url). Only the SHA-256 of the
whole key is stored, and it is shown once, when issued.

SHA-256, not bcrypt or Argon2: those are slow on purpose to protect
passwords people choose, which can be guessed. A key of 256 random bits
cannot be guessed whatever the hash costs, so a fast hash loses nothing and
the API does not spend milliseconds of CPU on every request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

PREFIX = "mk"
KEY_PATTERN = re.compile(r"mk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# The `limits` strings a key may carry instead of the API's defaults; "none":
# this key is not limited at all.
UNLIMITED = "none"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class BadKeyFormat(ValueError):
    """A string that is not an issued key (``mk_<12 hex>_<43 base64url>``)."""


def new_key() -> tuple[str, str]:
    """A fresh (key id, key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str:
    """The id an issued key carries; BadKeyFormat for anything else (the
    operator's key, a typo), which then needs no database read."""
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        raise BadKeyFormat("not an issued key (mk_<id>_<secret>)")
    return match.group(1)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    sha256: str
    created: datetime
    revoked_at: datetime | None = None
    rate: str | None = None  # None: the API's default; "none": unlimited
    quota: str | None = None
    sims: frozenset[str] = field(default_factory=frozenset)  # empty: every simulation

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def may_read(self, sim: str) -> bool:
        return not self.sims or sim in self.sims


def shown(key: ApiKey) -> dict:
    """What `murmur api-keys list` prints of a key: never the key, and of its
    hash only the first 8 digits (enough to tell two apart)."""
    return {"id": key.key_id, "name": key.name, "sha256": key.sha256[:8] + "…",
            "created": key.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "revoked": key.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ") if key.revoked_at else "",
            "rate": key.rate or "(default)", "quota": key.quota or "(default)",
            "sims": ",".join(sorted(key.sims)) or "(all)"}


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class KeyTable:
    """The ``api_keys`` table, on a CassandraStore's session (its keyspace)."""

    def __init__(self, store) -> None:
        self.store = store

    def _cql(self, cql: str) -> str:
        return cql.format(ks=self.store.keyspace)

    def issue(self, name: str, *, rate: str | None = None, quota: str | None = None,
              sims: frozenset[str] = frozenset()) -> tuple[ApiKey, str]:
        """A new key's row and the key itself (to show once)."""
        session = self.store.connect()
        for _ in range(3):
            key_id, key = new_key()
            created = datetime.now(timezone.utc).replace(microsecond=0)
            # IF NOT EXISTS: two keys never share an id, however unlikely.
            applied = session.execute(self._cql(
                "INSERT INTO {ks}.api_keys (key_id, name, sha256, created, rate, quota, sims) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) IF NOT EXISTS"),
                (key_id, name, hash_key(key), created, rate, quota, set(sims) or None)).was_applied
            if applied:
                return ApiKey(key_id, name, hash_key(key), created, None, rate, quota, frozenset(sims)), key
        raise RuntimeError("could not find a free key id in 3 tries")

    def get(self, key_id: str) -> ApiKey | None:
        row = self.store.connect().execute(self._cql("SELECT * FROM {ks}.api_keys WHERE key_id = %s"),
                                           (key_id,)).one()
        return None if row is None else _key(row)

    def all(self) -> list[ApiKey]:
        rows = self.store.connect().execute(self._cql("SELECT * FROM {ks}.api_keys"))
        return sorted((_key(r) for r in rows), key=lambda k: (k.created, k.key_id))

    def revoke(self, key_id: str) -> ApiKey | None:
        """Marks the key revoked (the row stays, for the record); None: no
        such key. Revoking twice keeps the first time."""
        key = self.get(key_id)
        if key is None or key.revoked:
            return key
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.store.connect().execute(self._cql("UPDATE {ks}.api_keys SET revoked_at = %s WHERE key_id = %s"),
                                     (now, key_id))
        return self.get(key_id)


def _key(row) -> ApiKey:
    return ApiKey(row.key_id, row.name, row.sha256, _utc(row.created), _utc(row.revoked_at), row.rate, row.quota,
                  frozenset(row.sims or ()))


class UsageTable:
    """Quota use per key and fixed window, in Cassandra counters
    (``api_key_usage``): shared by API replicas and kept across restarts,
    which an in-memory count of a daily quota would not be."""

    def __init__(self, store) -> None:
        self.store = store

    def add(self, key_id: str, window_start: int, n: int) -> int:
        """Adds ``n`` (negative: takes back) and returns the window's use.
        Add first, read after: of two requests racing for the last unit,
        both may be refused, never both served."""
        session = self.store.connect()
        ks = self.store.keyspace
        session.execute(f"UPDATE {ks}.api_key_usage SET used = used + %s WHERE key_id = %s AND window_start = %s",
                        (n, key_id, window_start))
        row = session.execute(f"SELECT used FROM {ks}.api_key_usage WHERE key_id = %s AND window_start = %s",
                              (key_id, window_start)).one()
        return row.used if row is not None else 0
