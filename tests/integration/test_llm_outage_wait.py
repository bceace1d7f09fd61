"""A call whose server is away waits for it (``outage_wait_s``) instead of
falling back at once: against the local vLLM-like dev server, stopped and
started again on its port, or answering 500 for a while."""

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from streams.llm import LlmClient, LlmUnavailable, importance_prompt
from streams.llm.devserver import DevServer, DevServerConfig
from streams.settings import LlmRole, LlmSettings

FAST, EMBED = "Qwen/Qwen2.5-1.5B-Instruct", "BAAI/bge-small-en-v1.5"


@pytest.fixture
def server():
    with DevServer(DevServerConfig(latency_ms=5, retry_after_s=None)) as srv:
        yield srv


def settings(url, outage_wait_s, **kw):
    roles = {r: LlmRole(url=url, model=m, timeout_s=2.0) for r, m in
             (("fast", FAST), ("balanced", FAST), ("heavy", FAST), ("embed", EMBED))}
    return LlmSettings(backend="vllm", embed_backend="vllm", max_retries=2, backoff_base_s=0.01, batch_prompts=0,
                       fallback={"fast": []}, outage_wait_s=outage_wait_s, **roles, **kw)


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def waits(role, outcome):
    return metric("murmur_llm_outage_waits_total", role=role, outcome=outcome)


def waiting(role):
    return metric("murmur_llm_outage_waiting_calls", role=role)


async def during_outage(client, call, begin, end, *, down_s, role="fast"):
    """``call(client)`` made while the server is away (``begin()`` to
    ``end()``, ``down_s`` apart, both run off the loop); (result or
    exception, seconds it took, calls seen waiting mid-outage)."""
    await asyncio.to_thread(begin)
    t0 = time.perf_counter()
    task = asyncio.ensure_future(call(client))
    await asyncio.sleep(down_s)
    seen_waiting = waiting(role)
    await asyncio.to_thread(end)
    try:
        result = await task
    except LlmUnavailable as exc:
        result = exc
    return result, time.perf_counter() - t0, seen_waiting


def run(llm_settings, body):
    records = []

    async def go():
        client = LlmClient(llm_settings, records.append)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(go()), records


def ask(client):
    return client.complete_json("fast", importance_prompt("The council closed the park today!"))


def test_a_server_restarted_within_the_wait_answers_the_call(server):
    """A deploy: the server goes away (connection refused) and comes back on
    its port 2 s later; the call made meanwhile gets the model's answer."""
    before = waits("fast", "recovered"), waits("fast", "gave_up"), waiting("fast")

    async def body(client):
        warm = await ask(client)  # a pooled connection, as a running worker has
        return warm, await during_outage(client, ask, server.stop, server.start, down_s=2.0)

    (warm, (res, took, seen_waiting)), records = run(settings(server.url, outage_wait_s=10), body)
    assert not isinstance(res, Exception), res
    assert res.status == "retried_ok" and res.attempts > 1 and res.model == FAST
    assert res.data == warm.data  # the real answer, not a fallback
    assert took >= 2.0 and res.latency_ms >= 2000
    assert [r["status"] for r in records] == ["ok", "retried_ok"]  # one record for the call, at its end
    assert seen_waiting == before[2] + 1  # the gauge showed it waiting ...
    assert waiting("fast") == before[2]  # ... and no longer
    assert (waits("fast", "recovered"), waits("fast", "gave_up")) == (before[0] + 1, before[1])


def test_embeddings_wait_too(server):
    """The vLLM embedder goes through the same transport: a vector, not a
    memory stored without one."""
    def down():
        server.config.fail_models = {EMBED}

    def up():
        server.config.fail_models = set()

    (outcome, records) = run(settings(server.url, outage_wait_s=10),
                             lambda c: during_outage(c, lambda c: c.embed(["a post"]), down, up, down_s=1.5,
                                                     role="embed"))
    vecs, took, seen_waiting = outcome
    assert not isinstance(vecs, Exception), vecs
    assert len(vecs) == 1 and len(vecs[0]) == 384 and took >= 1.5
    assert [r["status"] for r in records] == ["retried_ok"] and seen_waiting >= 1


def test_an_outage_longer_than_the_wait_falls_back_after_it(server):
    server.config.fail_models = {FAST}  # 500s for the whole test
    before = waits("fast", "gave_up")
    t0 = time.perf_counter()
    exc, records = run(settings(server.url, outage_wait_s=0.5), lambda c: _raised(ask(c)))
    took = time.perf_counter() - t0
    assert isinstance(exc, LlmUnavailable) and "after waiting" in str(exc)
    (rec,) = records  # the failed record, once
    assert rec["status"] == "failed" and "http_5xx" in rec["error"] and exc.record == rec
    assert rec["attempts"] >= 6  # more than the one pass (3 attempts) it made without the wait
    assert 0.5 <= took < 5
    assert waits("fast", "gave_up") == before + 1 and waiting("fast") == 0


def test_without_the_wait_an_outage_falls_back_at_once(server):
    server.config.fail_models = {FAST}
    exc, records = run(settings(server.url, outage_wait_s=0), lambda c: _raised(ask(c)))
    assert isinstance(exc, LlmUnavailable) and "after waiting" not in str(exc)
    assert records[0]["attempts"] == 3  # one pass: 1 attempt + 2 retries, as before the wait existed


@pytest.mark.parametrize("answer", ["invalid", "400"])
def test_a_server_that_answers_no_is_not_waited_for(server, answer):
    """An invalid answer or a 400 comes from a server that is up: the
    fallback applies at once, whatever the wait."""
    if answer == "invalid":
        server.config.invalid_models = {FAST}
    else:
        server.config.fail_next[:] = [400]
    before = waits("fast", "gave_up")
    t0 = time.perf_counter()
    exc, records = run(settings(server.url, outage_wait_s=30), lambda c: _raised(ask(c)))
    assert isinstance(exc, LlmUnavailable) and time.perf_counter() - t0 < 2
    assert records[0]["attempts"] == (3 if answer == "invalid" else 1)
    assert waits("fast", "gave_up") == before


async def _raised(coro):
    try:
        return await coro
    except LlmUnavailable as exc:
        return exc


# -- a worker through a restart of its server --------------------------------------
@pytest.mark.integration
def test_a_worker_rides_out_a_server_restart_with_no_memory_degraded(live, tmp_path):
    """The vLLM server of a running worker is stopped for 8 s mid-stream
    and started again on its port: the memories of the posts that came
    meanwhile are scored late, none with the fallback importance or without
    a vector."""
    import json
    import uuid

    from connectors.publish_cli import run_publish
    from deploy.pipeline import stop_process
    from sinks.cassandra_store import CassandraStore
    from tests.integration.conftest import start_worker, wait_for

    server = DevServer(DevServerConfig(latency_ms=5, capacity=64)).start()
    env = {"MURMUR_LLM__BACKEND": "vllm", "MURMUR_LLM__EMBED_BACKEND": "vllm", "MURMUR_LLM__OUTAGE_WAIT_S": "60"}
    for role in ("FAST", "BALANCED", "HEAVY", "EMBED"):
        env[f"MURMUR_LLM__{role}__URL"] = server.url
    worker = start_worker(live, **env)
    sim = f"restart-{uuid.uuid4().hex[:8]}"
    store = CassandraStore(worker.settings)

    def publish(phase, first_round, n):
        path = tmp_path / f"{phase}.jsonl"
        path.write_text("".join(json.dumps({
            "sim_id": sim, "type": "Post", "agent_id": "speaker", "round": r, "ts": 1_000 * r,
            "action": "CREATE_POST", "content": f"The council's park budget is a scandal, post {i} ({phase})"}) + "\n"
            for i, r in enumerate(range(first_round, first_round + n))))
        assert run_publish(live, [path]).counts.dead_lettered == 0

    def memories():  # of the posts (a reflection, if one comes, is not what is counted)
        return [m for m in store.memories(sim, "speaker", limit=100) if m["kind"] != "reflection"]

    try:
        publish("before", 1, 2)
        wait_for(lambda: len(memories()) == 2, timeout=120, what="the memories before the restart", worker=worker)
        server.stop()  # connection refused from now on
        t0 = time.monotonic()
        publish("during", 3, 3)
        time.sleep(max(0.0, 8.0 - (time.monotonic() - t0)))
        assert len(memories()) == 2  # nothing scored while the server is away: the calls wait
        server.start()
        wait_for(lambda: len(memories()) == 5, timeout=90, what="the memories of the restart", worker=worker)
        degraded = [m["content"] for m in memories() if m["importance_fallback"] or not m["embedder"]]
        assert degraded == []
        assert server.stats()["statuses"].get("200", 0) > 0
    finally:
        stop_process(live, worker.name)
        server.stop()
        store.close()
