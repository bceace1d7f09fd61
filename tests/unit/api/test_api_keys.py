"""The pure parts of issued API keys and their limits: the key format, the
hash, what a listing shows, the lookup cache, and the limit decisions."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from limits import parse
from pydantic import ValidationError

from api.app import create_app
from api.key_cache import KeyCache
from api.keys import ApiKey, BadKeyFormat, hash_key, key_id_of, new_key, shown
from api.throttle import Decision, Throttle, headers, limit_of, nearest, quota_decision, refusal, window_of
from streams.settings import Settings

DAY = 86400


def key(**kw) -> ApiKey:
    return ApiKey(**{"key_id": "0123456789ab", "name": "sim-runner", "sha256": hash_key("k"),
                     "created": datetime(2026, 12, 5, tzinfo=timezone.utc), **kw})


def test_an_issued_key_carries_its_id_and_parses_back():
    key_id, secret = new_key()
    assert secret.startswith(f"mk_{key_id}_") and len(key_id) == 12
    assert key_id_of(secret) == key_id
    assert new_key()[1] != secret  # random


@pytest.mark.parametrize("text", ["s3cret", "mk_0123456789ab", "mk_0123456789ab_short", "mk_0123456789AB_" + "a" * 43,
                                  "xx_0123456789ab_" + "a" * 43, "mk_0123456789ab_" + "a" * 43 + "\n", ""])
def test_anything_else_is_not_an_issued_key(text):
    with pytest.raises(BadKeyFormat):
        key_id_of(text)


def test_the_hash_is_sha256_of_the_whole_key():
    _, secret = new_key()
    assert hash_key(secret) == hashlib.sha256(secret.encode()).hexdigest()


def test_a_listing_never_shows_the_key_or_its_whole_hash():
    row = shown(key(revoked_at=datetime(2026, 12, 6, tzinfo=timezone.utc), sims=frozenset({"b", "a"})))
    assert hash_key("k") not in " ".join(row.values()) and row["sha256"] == hash_key("k")[:8] + "…"
    assert row["revoked"] == "2026-12-06T00:00:00Z" and row["sims"] == "a,b" and row["rate"] == "(default)"


def test_the_cache_reads_a_key_once_per_ttl_unknown_ids_included():
    now, reads = [100.0], []
    table = {"a": key(key_id="a")}

    async def load(key_id):
        reads.append(key_id)
        return table.get(key_id)

    cache = KeyCache(load, ttl_s=5, clock=lambda: now[0])

    async def run():
        assert (await cache.get("a")).key_id == "a"
        assert await cache.get("zz") is None
        table["a"] = key(key_id="a", revoked_at=datetime(2026, 12, 6, tzinfo=timezone.utc))
        now[0] += 4.9
        assert not (await cache.get("a")).revoked and await cache.get("zz") is None  # still the cached ones
        now[0] += 0.2
        assert (await cache.get("a")).revoked  # past the TTL: read again
    asyncio.run(run())
    assert reads == ["a", "zz", "a"]


def test_a_keys_own_limit_wins_and_none_turns_it_off():
    assert limit_of(None, "10/second") == parse("10/second")
    assert limit_of("5/minute", "10/second") == parse("5/minute")
    assert limit_of("none", "10/second") is None and limit_of(None, None) is None


def test_a_day_quota_window_starts_at_utc_midnight():
    midnight = datetime(2026, 12, 5, tzinfo=timezone.utc).timestamp()
    assert window_of(parse("10000/day"), midnight + 3600.5) == (midnight, midnight + DAY)
    assert window_of(parse("5/minute"), 125.0) == (120, 180)


def test_a_quota_refuses_what_would_go_over_and_says_what_is_left():
    item, now = parse("10/day"), 1000.0
    ok = quota_decision(item, used=7, cost=3, now=now)
    assert ok.allowed and ok.remaining == 3 and ok.reset_s == DAY - 1000
    over = quota_decision(item, used=12, cost=5, now=now)
    assert not over.allowed and over.remaining == 3  # its cost is given back
    assert "counts 5" in refusal(over, "k1")
    never = quota_decision(item, used=11, cost=11, now=now)
    assert not never.allowed and "never fit" in refusal(never, "k1")


def test_the_reported_limit_is_a_refusal_or_the_nearest_to_running_out():
    rate = Decision(True, 10, 9, 1, 1, "rate")
    quota = Decision(True, 1000, 50, 3600, DAY, "quota")
    assert nearest([rate, quota]) is quota and nearest([]) is None
    refused = Decision(False, 10, 0, 1, 1, "rate")
    assert nearest([quota, refused]) is refused


def test_headers_carry_retry_after_only_on_refusal():
    assert "Retry-After" not in headers(Decision(True, 10, 9, 1, 1, "rate"))
    h = headers(Decision(False, 10, 0, 7, 60, "rate"))
    assert h == {"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "7",
                 "RateLimit-Policy": "10;w=60", "Retry-After": "7"}


def test_the_throttle_limits_rate_in_memory_and_gives_refused_quota_back():
    use: dict[tuple, int] = {}

    async def add_use(key_id, start, n):
        use[(key_id, start)] = use.get((key_id, start), 0) + n
        return use[(key_id, start)]

    throttle = Throttle(rate="2/minute", quota="5/day", add_use=add_use, clock=lambda: 1000.0)

    async def run():
        k = key()
        first = await throttle.charge(k, 3)
        assert first.allowed and first.what == "quota" and first.remaining == 2  # 2/5 left < 1/2 left
        second = await throttle.charge(k, 3)
        assert not second.allowed and second.what == "quota" and second.remaining == 2
        third = await throttle.charge(k, 1)
        assert not third.allowed and third.what == "rate"  # the refused quota still spent a request
        assert await Throttle(rate=None, quota=None, add_use=add_use).charge(k, 1) is None
    asyncio.run(run())
    assert use == {("0123456789ab", 0): 3}


def test_a_limit_setting_that_does_not_parse_names_the_setting():
    with pytest.raises(ValidationError, match="api_key_rate"):
        Settings(api_key_rate="10/sec0nd")
    assert Settings(api_key_quota="").api_key_quota is None


def test_required_keys_without_an_operator_key_refuse_strangers_before_any_read(tmp_path):
    settings = Settings(api_require_key=True, qdrant_path=tmp_path / "q", cassandra_port=1,
                        kafka_bootstrap="127.0.0.1:1")
    with TestClient(create_app(settings, run_qdrant_sink=False)) as client:
        assert client.get("/simulations/s/agents").status_code == 401
        assert client.get("/simulations/s/agents", headers={"X-API-Key": "s3cret"}).status_code == 401
        assert client.get("/health").status_code in (200, 503)
        # A well-formed key needs the table: with Cassandra away, 503, not 401 or a crash.
        resp = client.get("/simulations/s/agents", headers={"X-API-Key": new_key()[1]})
        assert resp.status_code == 503 and resp.headers["content-type"].startswith("application/problem+json")
        assert client.get("/openapi.json").json()["paths"]["/simulations/{sim}/agents"]["get"]["security"]
