"""The live stream's filter: one simulation's records only, told apart by
key; private texts never sent."""

from __future__ import annotations

from api.monitor import SimFilter
from streams.dead_letter import dead_letter_record
from streams.serde import default_serde
from streams.settings import Settings
from streams.topics import AGENT_LOG, CONFLICTS, DEAD_LETTER, VERDICTS, agent_key, sim_key, topic_name

SERDE = default_serde()


def verdict(sim: str, rnd: int) -> bytes:
    return SERDE.encode("Verdict", {
        "event_id": f"v{rnd}", "sim_id": sim, "round": rnd, "ts": 1000 * rnd, "question": "", "support_ratio": -0.25,
        "direction": "against", "magnitude": 0.25, "confidence": 0.5, "post_count": 4, "author_count": 3,
        "stance_positive": 1, "stance_negative": 2, "stance_neutral": 0, "flips": 0, "rationale": None,
        "backend": "deterministic"})


def conflict(sim: str) -> bytes:
    return SERDE.encode("Conflict", {
        "event_id": "c1", "sim_id": sim, "round": 2, "ts": 2000, "agent_id": "a", "new_memory_id": "m2",
        "old_memory_id": "m1", "old_ts": 1000, "new_content": "private new", "old_content": "private old",
        "similarity": 0.8, "reason": "flip", "confidence": 0.9, "backend": "deterministic",
        "source_topic": "memory.scored.v1", "source_partition": 0, "source_offset": 5})


def test_only_one_sim_counted_and_sent_without_private_text():
    settings = Settings(namespace="ns")
    f = SimFilter(settings, "s1")
    log = topic_name(AGENT_LOG, "ns")
    verdicts, conflicts = topic_name(VERDICTS, "ns"), topic_name(CONFLICTS, "ns")
    assert verdicts == "ns.sim.verdicts.v1"  # derived topics are namespaced, sources are not
    assert f.feed(log, agent_key("s1", "a"), b"x") is None
    assert f.feed(log, agent_key("s10", "a"), b"x") is None  # a sim whose id extends ours
    assert f.feed(log, agent_key("s1", "a"), b"x") is None
    assert f.feed(verdicts, sim_key("s10"), verdict("s10", 1)) is None
    name, v = f.feed(verdicts, sim_key("s1"), verdict("s1", 3))
    assert name == "verdict" and v["round"] == 3 and v["support_ratio"] == -0.25
    name, c = f.feed(conflicts, agent_key("s1", "a"), conflict("s1"))
    assert name == "conflict" and "private" not in repr(c) and c["reason"] == "flip"
    assert f.feed("some.other.topic", sim_key("s1"), b"x") is None
    assert dict(f.counts) == {AGENT_LOG.name: 2, VERDICTS.name: 1, CONFLICTS.name: 1}


def test_dead_letters_are_matched_by_their_sim_field():
    f = SimFilter(Settings(), "s1")
    dl = lambda sim: SERDE.encode("DeadLetter", dead_letter_record(stage="importance", reason="bad", raw=b"\x00",  # noqa: E731
                                                                   sim_id=sim))
    dead = topic_name(DEAD_LETTER)
    f.feed(dead, b"sim.posts.v1", dl("s1"))
    f.feed(dead, b"sim.posts.v1", dl("s2"))
    f.feed(dead, b"sim.posts.v1", b"not avro")
    assert f.counts[DEAD_LETTER.name] == 1


def test_viewers_share_one_lag_query_per_period():
    import threading

    from api import monitor
    from streams.settings import Settings

    calls = []

    def report(settings):
        calls.append(settings.namespace)
        return [{"group": "all", "lag": len(calls), "partitions": []}]

    clock = [100.0]
    shared = monitor.SharedLag(max_age_s=4.0, report=report, clock=lambda: clock[0])
    live, replay = Settings(), Settings(namespace="replay1")
    threads = [threading.Thread(target=shared.get, args=(live,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [""]  # eight viewers, one query
    clock[0] += 3.9
    assert shared.get(live)[0]["lag"] == 1 and calls == [""]
    assert shared.get(replay)[0]["lag"] == 2  # another namespace has its own
    clock[0] += 0.2
    assert shared.get(live)[0]["lag"] == 3  # stale: asked again


def test_a_stream_position_survives_its_token_and_a_bad_token_is_refused():
    import pytest

    from api.monitor import parse_token, position_token

    topics = ["sim.agent-log.v1", "memory.scored.v1", "sim.verdicts.v1"]
    positions = {("sim.agent-log.v1", 0): 12, ("sim.agent-log.v1", 3): 0, ("sim.verdicts.v1", 1): 99}
    token = position_token(topics, positions)
    assert token == "p1:0.0.12,0.3.0,2.1.99"
    assert parse_token(token, topics) == positions
    assert parse_token("p1:", topics) == {}
    for bad in ("garbage", "p2:0.0.1", "p1:7.0.1", "p1:0.0.-1", "p1:0.0", "p1:x.y.z"):
        with pytest.raises(ValueError):
            parse_token(bad, topics)
