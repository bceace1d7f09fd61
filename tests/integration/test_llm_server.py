"""LlmClient against the local vLLM-like dev server (real HTTP, real retries)."""

import asyncio
import time

import numpy as np
import pytest
from prometheus_client import REGISTRY

from streams.llm import (
    RECORD_FIELDS,
    LlmClient,
    LlmUnavailable,
    cosine,
    importance_prompt,
    memory_prompt,
    make_llm,
    reflection_prompt,
    stance_prompt,
)
from streams.llm.devserver import DevServer, DevServerConfig
from streams.settings import LlmRole, LlmSettings

FAST, BALANCED, HEAVY = "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-32B-Instruct"


@pytest.fixture
def server():
    with DevServer(DevServerConfig(latency_ms=5, retry_after_s=None)) as srv:
        yield srv


def settings(url, **kw):
    timeout = kw.pop("timeout_s", 5.0)
    # One chat call per prompt unless a test asks for batching (its own tests below).
    base = dict(backend="vllm", embed_backend="vllm", max_retries=2, backoff_base_s=0.01, max_concurrency=16,
                batch_prompts=0)
    base.update(kw)
    return LlmSettings(
        fast=LlmRole(url=url, model=FAST, timeout_s=timeout),
        balanced=LlmRole(url=url, model=BALANCED, timeout_s=timeout),
        heavy=LlmRole(url=url, model=HEAVY, timeout_s=timeout),
        embed=LlmRole(url=url, model="BAAI/bge-small-en-v1.5", timeout_s=timeout),
        **base,
    )


def call(llm_settings, *coros_fns):
    """Run coroutine factories against one client; return (results, records)."""
    records = []

    async def go():
        client = make_llm(llm_settings, records.append)
        try:
            return await asyncio.gather(*(fn(client) for fn in coros_fns), return_exceptions=True)
        finally:
            await client.aclose()

    return asyncio.run(go()), records


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("batch", [32, 0], ids=["batched-completions", "chat"])
def test_structured_output_is_requested_and_validated(server, batch):
    mems = [("m1", "The park is wonderful"), ("m2", "The park is great"), ("m3", "The bus is late")]
    (imp, refl, con, st), records = call(
        settings(server.url, batch_prompts=batch),
        lambda c: c.complete_json("fast", importance_prompt("I am furious at Mayor Bob!"), sim_id="s", round=2),
        lambda c: c.complete_json("heavy", reflection_prompt("alice", mems)),
        lambda c: c.complete_json("balanced", memory_prompt([{"kind": "post", "content": "I hate the park",
                                                                "earlier": ["I love the park", "Tea is fine"]}],
                                                              question="Is the park good?")),
        lambda c: c.complete_json("fast", stance_prompt("Is the park good?", "The park is wonderful")),
    )
    assert imp.backend == "vllm" and imp["_backend"] == "vllm" and 1 <= imp["importance"] <= 10
    assert 3 <= len(refl["beliefs"]) <= 5
    assert all(set(b["sources"]) <= {"m1", "m2", "m3"} for b in refl["beliefs"])
    ((mem),) = con["statements"]
    assert [c["earlier"] for c in mem["contradicts"]] == [1] and mem["valence"] < 0
    assert st["valence"] > 0
    assert imp.status == "ok" and imp.attempts == 1 and imp.model == FAST
    assert imp.prompt_tokens > 0 and imp.completion_tokens > 0
    if batch:  # one completions request per model and schema, each prompt rendered with the chat template
        bodies = server.last_bodies()
        assert len(bodies) == 4 and all(len(b["prompt"]) == 1 for b in bodies)
        for body in bodies:
            assert body["structured_outputs"]["json"]["additionalProperties"] is False
            assert "guided_json" not in body and "response_format" not in body and "messages" not in body
            assert body["temperature"] == 0 and body["seed"] == 7
            assert all(p.startswith("<|im_start|>system\n") and p.endswith("<|im_start|>assistant\n")
                       for p in body["prompt"])
        assert len(records) == 4 and all(r["status"] == "ok" for r in records)
        return
    bodies = [b for b in server.last_bodies() if "messages" in b]
    assert len(bodies) == 4
    for body in bodies:
        rf = body["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
        assert rf["json_schema"]["schema"]["additionalProperties"] is False
        assert "guided_json" not in body and "structured_outputs" not in body
        assert body["temperature"] == 0 and body["seed"] == 7
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)


def test_call_records_have_exactly_the_fields(server):
    (res,), records = call(
        settings(server.url),
        lambda c: c.complete_json("fast", importance_prompt("hello"), cache_key="ck1", sim_id="sim", round=4),
    )
    (rec,) = records
    assert tuple(rec) == RECORD_FIELDS
    assert rec == res.record
    assert rec["cache_key"] == "ck1" and rec["sim_id"] == "sim" and rec["round"] == 4
    assert rec["role"] == "fast" and rec["model"] == FAST and rec["backend"] == "vllm"
    assert isinstance(rec["ts"], int) and abs(rec["ts"] - time.time() * 1000) < 60_000
    assert isinstance(rec["latency_ms"], float) and rec["latency_ms"] >= 5.0
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0
    assert rec["status"] == "ok" and rec["attempts"] == 1 and rec["error"] is None
    assert len(rec["event_id"]) == 32 and int(rec["event_id"], 16) >= 0


def test_500s_are_retried_and_succeed(server):
    server.config.fail_next[:] = [500, 503]
    before = metric("murmur_llm_failures_total", role="fast", reason="http_5xx")
    (res,), records = call(settings(server.url), lambda c: c.complete_json("fast", importance_prompt("x y z")))
    assert res.status == "retried_ok" and res.attempts == 3 and res.model == FAST
    assert records[0]["status"] == "retried_ok" and records[0]["attempts"] == 3
    assert metric("murmur_llm_failures_total", role="fast", reason="http_5xx") - before == 2
    assert server.stats()["statuses"] == {"500": 1, "503": 1, "200": 1}


def test_429_retry_after_is_honoured(server):
    server.config.retry_after_s = 0.4
    server.config.fail_next[:] = [429]
    t0 = time.perf_counter()
    (res,), _ = call(settings(server.url), lambda c: c.complete_json("fast", importance_prompt("hello")))
    elapsed = time.perf_counter() - t0
    assert res.status == "retried_ok" and res.attempts == 2
    arrivals = server.stats()["arrivals"]
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.4  # backoff alone would be ~0.01 s
    assert elapsed >= 0.4


def test_invalid_output_is_a_failed_attempt_then_fallback(server):
    server.config.invalid_models = {BALANCED}
    before = metric("murmur_llm_failures_total", role="balanced", reason="invalid_json")
    (res,), records = call(settings(server.url), lambda c: c.complete_json("balanced", importance_prompt("hi")))
    assert res.status == "fallback_ok" and res.model == FAST and res.attempts == 4  # 3 on balanced + 1
    assert metric("murmur_llm_failures_total", role="balanced", reason="invalid_json") - before == 3
    seeds = [b["seed"] for b in server.last_bodies() if b["model"] == BALANCED]
    assert seeds == [7, 8, 9]  # retries vary the seed, or temperature 0 repeats the answer


def test_failing_role_falls_back_to_next_role(server):
    server.config.fail_models = {HEAVY}
    before = metric("murmur_llm_fallbacks_total", from_role="heavy", to_role="balanced")
    (res,), records = call(settings(server.url), lambda c: c.complete_json("heavy", importance_prompt("hi")))
    assert res.status == "fallback_ok" and res.model == BALANCED and res.role == "heavy"
    assert res.attempts == 4
    (rec,) = records
    assert rec["status"] == "fallback_ok" and rec["role"] == "heavy" and rec["model"] == BALANCED
    assert metric("murmur_llm_fallbacks_total", from_role="heavy", to_role="balanced") - before == 1
    assert server.stats()["models"] == {HEAVY: 3, BALANCED: 1}


def test_client_error_is_not_retried_on_the_same_role(server):
    server.config.fail_next[:] = [400]
    (res,), _ = call(settings(server.url), lambda c: c.complete_json("balanced", importance_prompt("hi")))
    assert res.status == "fallback_ok" and res.attempts == 2 and res.model == FAST


def test_connection_errors_fall_back_to_a_live_server(server):
    dead = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    s = settings(server.url)
    s = s.model_copy(update={"heavy": LlmRole(url=dead, model=HEAVY, timeout_s=1.0)})
    (res,), _ = call(s, lambda c: c.complete_json("heavy", importance_prompt("hi")))
    assert res.status == "fallback_ok" and res.model == BALANCED


def test_everything_failing_raises_and_records_failed(server):
    server.config.fail_models = {FAST, BALANCED, HEAVY}
    before = metric("murmur_llm_calls_total", role="heavy", status="failed")
    # One pass over the chain: the wait for an outage's end is tested in test_llm_outage_wait.py.
    (exc,), records = call(settings(server.url, outage_wait_s=0),
                           lambda c: c.complete_json("heavy", importance_prompt("hi")))
    assert isinstance(exc, LlmUnavailable)
    (rec,) = records
    assert exc.record == rec
    assert rec["status"] == "failed" and rec["attempts"] == 9 and "http_5xx" in rec["error"]
    assert rec["model"] == FAST  # the last model tried
    assert metric("murmur_llm_calls_total", role="heavy", status="failed") - before == 1


def test_timeouts_are_retried_then_fail(server):
    server.config.latency_ms = 400
    s = settings(server.url, timeout_s=0.1, max_retries=1, outage_wait_s=0)  # one pass, no wait for the end
    (exc,), records = call(s, lambda c: c.complete_json("fast", importance_prompt("hi")))
    assert isinstance(exc, LlmUnavailable)
    assert records[0]["attempts"] == 2 and records[0]["error"].startswith("timeout")


def test_concurrency_is_bounded(server):
    server.config.latency_ms = 30
    s = settings(server.url, max_concurrency=4)
    results, records = call(s, *[lambda c, i=i: c.complete_json("fast", importance_prompt(f"post {i}"))
                                  for i in range(20)])
    assert all(r.status == "ok" for r in results) and len(records) == 20
    stats = server.stats()
    assert stats["total"] == 20
    assert stats["max_in_flight"] == 4  # bounded, and the bound is actually used


def test_server_handles_hundreds_of_concurrent_requests_and_queues_beyond_capacity(server):
    server.config.latency_ms = 50
    server.config.capacity = 100
    s = settings(server.url, max_concurrency=300)
    t0 = time.perf_counter()
    results, _ = call(s, *[lambda c, i=i: c.complete_json("fast", importance_prompt(f"post {i}"))
                           for i in range(300)])
    elapsed = time.perf_counter() - t0
    assert all(r.status == "ok" for r in results)
    stats = server.stats()
    assert stats["max_in_flight"] > 100 and stats["max_processing"] == 100
    assert elapsed >= 0.15  # 300 requests through 100 slots of 50 ms: at least 3 rounds


def test_embeddings_over_http(server):
    (vecs,), records = call(settings(server.url), lambda c: c.embed(
        ["The council approved the park budget", "Council approves the park budget", "My cat sleeps"]))
    assert len(vecs) == 3 and all(len(v) == 384 for v in vecs)
    assert cosine(vecs[0], vecs[1]) > 0.6 > cosine(vecs[0], vecs[2])
    (rec,) = records
    assert rec["role"] == "embed" and rec["backend"] == "vllm" and rec["prompt_tokens"] > 0
    body = server.last_bodies()[-1]
    assert body["model"] == "BAAI/bge-small-en-v1.5" and len(body["input"]) == 3
    assert body["encoding_format"] == "base64"
    # the same vectors as JSON numbers would give (a server that ignores the format)
    from streams.llm.embedder import hash_embed
    assert all(abs(a - b) < 1e-6 for v, t in zip(vecs, body["input"]) for a, b in zip(v, hash_embed(t, 384)))


def test_a_text_embedded_before_is_not_sent_again(server):
    async def twice(client):
        first = await client.embed(["a repost", "a reply", "a repost"])
        return first, await client.embed(["a reply", "a new post", "a repost"])

    ((first, second),), records = call(settings(server.url), twice)
    assert [b["input"] for b in server.last_bodies()] == [["a repost", "a reply"], ["a new post"]]
    assert len(records) == 2  # one LlmCall per request that was made
    same = np.array_equal
    assert same(first[0], first[2]) and same(second[2], first[0]) and same(second[0], first[1])
    hits = metric("murmur_embed_cache_hits_total")

    server.reset_stats()
    ((again, _),), _ = call(settings(server.url, embed_cache_size=0), twice)
    assert [len(b["input"]) for b in server.last_bodies()] == [3, 3]  # the cache off: every text every time
    assert all(same(a, b) for a, b in zip(again, first)) and metric("murmur_embed_cache_hits_total") == hits


def test_wrong_embedding_dimension_is_rejected(server):
    server.config.embed_dim = 768
    (exc,), records = call(settings(server.url), lambda c: c.embed(["x"]))
    assert isinstance(exc, LlmUnavailable) and records[0]["attempts"] == 1


def test_concurrency_keeps_many_calls_in_flight(server):
    """Speed is for bench/; here we check the mechanism: with concurrency N
    the server sees N requests at once, with concurrency 1 never two."""
    server.config.latency_ms = 20

    async def peak(conc, n=40):
        server.reset_stats()
        client = LlmClient(settings(server.url, max_concurrency=conc))
        try:
            results = await asyncio.gather(*(client.complete_json("fast", importance_prompt(f"e {i}")) for i in range(n)))
            assert all(r.status == "ok" for r in results)
            return server.stats()["max_in_flight"]
        finally:
            await client.aclose()

    assert asyncio.run(peak(1)) == 1
    assert asyncio.run(peak(20)) == 20


def test_random_errors_are_absorbed_by_retries(server):
    server.config.error_rate = 0.3
    s = settings(server.url, max_retries=6)
    results, records = call(s, *[lambda c, i=i: c.complete_json("fast", importance_prompt(f"p {i}"))
                                  for i in range(40)])
    failed = [str(r) for r in results if isinstance(r, Exception)]
    assert not failed and all(r.status in ("ok", "retried_ok") for r in results), failed
    statuses = server.stats()["statuses"]
    assert statuses["200"] == 40 and statuses.get("500", 0) + statuses.get("429", 0) > 0
    assert sum(r["attempts"] for r in records) == sum(statuses.values())


def test_unknown_role_is_a_programming_error(server):
    (exc,), records = call(settings(server.url), lambda c: c.complete_json("seed", importance_prompt("x")))
    assert isinstance(exc, ValueError) and records == []


def test_devserver_info_endpoints(server):
    import httpx

    base = server.url.rsplit("/v1", 1)[0]
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    models = [m["id"] for m in httpx.get(f"{server.url}/models").json()["data"]]
    assert FAST in models
    assert httpx.get(f"{base}/stats").json()["total"] == 0
    assert isinstance(make_llm(settings(server.url)), LlmClient)


def test_stance_eval_measures_the_configured_llm(server, tmp_path):
    # `murmur eval stance` with MURMUR_LLM__BACKEND=vllm reads every post
    # through the fast role: what it scores is the user's own model.
    from eval import stance_bench
    from streams.settings import Settings

    for target, rows in {"parks": [("The new park is wonderful, I support it", 2), ("The park is a waste", 1),
                                   ("Weather is fine today", 0)],
                         "buses": [("Buses are terrible and I oppose the plan", 1), ("Great bus service!", 2)]}.items():
        (tmp_path / target).mkdir()
        (tmp_path / target / "val_text.txt").write_text("\n".join(t for t, _ in rows) + "\n")
        (tmp_path / target / "val_labels.txt").write_text("\n".join(str(lab) for _, lab in rows) + "\n")
    server.reset_stats()
    result = stance_bench.run(Settings(llm=settings(server.url)), tmp_path, split="val")
    assert result["model"] == f"vllm:{FAST}" and result["pooled"]["n"] == 5
    assert server.stats()["models"].get(FAST, 0) >= 5  # one stance call per post
    by = {r["target"]: r for r in result["targets"]}
    assert by["parks"]["verdict"]["backend"] == f"vllm:{FAST}" and 0 <= by["parks"]["f1"]["macro"] <= 100


def test_a_model_the_server_does_not_serve_stops_the_worker_at_start(server):
    import os
    import subprocess
    import sys

    from streams.llm.preflight import check_models

    assert check_models(settings(server.url)).errors == []
    wrong = settings(server.url).model_copy(update={"fast": LlmRole(url=server.url, model="Qwen/Qwen2.5-1.5B-Instrcut")})
    [error] = check_models(wrong).errors
    assert error.startswith("MURMUR_LLM__FAST__MODEL: 'Qwen/Qwen2.5-1.5B-Instrcut' is not served at")
    assert FAST in error  # what the server does serve
    away = settings("http://127.0.0.1:9/v1")  # nothing listens: said, not fatal (the client's retries are for that)
    assert check_models(away).errors == [] and len(check_models(away, timeout_s=1).warnings) == 4
    # The command: exit 2 naming the setting, before any broker is asked.
    env = {**os.environ, "MURMUR_LLM__BACKEND": "vllm", "MURMUR_LLM__FAST__URL": server.url,
           "MURMUR_LLM__FAST__MODEL": "Qwen/Qwen2.5-1.5B-Instrcut", "MURMUR_LLM__BALANCED__URL": server.url,
           "MURMUR_LLM__HEAVY__URL": server.url}
    res = subprocess.run([sys.executable, "-m", "streams.cli", "worker", "--processors", "agent"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "invalid setting MURMUR_LLM__FAST__MODEL" in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr


# -- batched completions ----------------------------------------------------------
def test_concurrent_calls_share_completions_requests(server):
    n = 64
    results, records = call(settings(server.url, batch_prompts=16, batch_window_ms=20),
                            *[lambda c, i=i: c.complete_json("fast", importance_prompt(f"post number {i}!"))
                              for i in range(n)])
    assert all(1 <= r["importance"] <= 10 for r in results)
    stats = server.stats()
    assert stats["prompts"] == n and stats["requests"] == {"completions": n // 16}
    assert len(records) == n and all(r["status"] == "ok" and r["task"] == "importance" for r in records)
    # the request's usage is shared out: every call has its part, and the parts add up
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in records)


def test_an_invalid_answer_in_a_batch_is_retried_alone(server):
    server.config.invalid_next_prompts = 1
    results, records = call(settings(server.url, batch_prompts=8, batch_window_ms=20),
                            *[lambda c, i=i: c.complete_json("fast", importance_prompt(f"p {i}")) for i in range(8)])
    assert all(not isinstance(r, BaseException) for r in results)
    assert sorted(r["status"] for r in records) == ["ok"] * 7 + ["retried_ok"]
    assert server.stats()["prompts"] == 9  # the 8, and the one retried on its own


def test_a_server_without_completions_gets_one_chat_call_per_prompt(caplog):
    with DevServer(DevServerConfig(latency_ms=5, completions=False)) as srv:
        results, records = call(settings(srv.url, batch_prompts=8, max_retries=0),
                                *[lambda c, i=i: c.complete_json("fast", importance_prompt(f"p {i}")) for i in range(5)])
        assert all(1 <= r["importance"] <= 10 for r in results)
        assert srv.stats()["requests"]["chat"] == 5 and all(r["status"] == "ok" for r in records)
    assert "has no /v1/completions" in caplog.text


def test_an_outage_cuts_the_server_off_instead_of_a_retry_storm():
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused, as a server that is down
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    n = 60
    # outage_wait_s 0: the breaker's part alone (the wait is tested in test_llm_outage_wait.py).
    s = settings(dead, max_retries=3, backoff_base_s=0.5, breaker_failures=4, breaker_cooldown_s=30,
                 breaker_quiet_s=0.2, outage_wait_s=0)
    results, records = call(s, *[lambda c, i=i: c.complete_json("fast", importance_prompt(f"p {i}")) for i in range(n)])
    assert all(isinstance(r, LlmUnavailable) for r in results) and len(records) == n
    attempts = sum(r["attempts"] for r in records)
    # Without the breaker: n x (1 + 3 retries) = 240 attempts, each retry
    # after a backoff. With it: the first attempts, and the few that went
    # between the quiet time passing and the breaker hearing of it.
    assert attempts < n + 16, attempts
    assert sum("circuit_open" in (r["error"] or "") for r in records) >= n - 16
    assert metric("murmur_llm_breaker_opened_total", role="fast") >= 1
