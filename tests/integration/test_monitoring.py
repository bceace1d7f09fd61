"""Operating Murmur: the Prometheus metrics a worker and the API serve during a
real run, the SSE stream and the live monitor page in a real headless
Chromium (Debian's package, driven by Playwright; no browser is downloaded).

One pipeline for the module: a worker in a namespace of its own with the LLM
behind the local vLLM-like server (the balanced model always failing, some
random errors: so failures and fallbacks really happen) and a real API
process reading that namespace."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from connectors import synthetic
from connectors.publisher import Publisher
from deploy.pipeline import process_log, start_process, stop_process
from streams.llm.devserver import DevServer, DevServerConfig
from streams.topology import input_topics, resolve
from sinks.cassandra_store import CassandraStore
from streams.kafka import BatchProducer, make_producer
from streams.topics import AGENT_LOG, topic_name
from tests.integration.conftest import free_port, metric_sum, scrape, start_worker, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "eval" / "cases" / "uk_sugar_levy_2018"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def pipeline(live, tmp_path_factory):
    llm = DevServerConfig(latency_ms=5, capacity=64, error_rate=0.05, retry_after_s=None)
    server = DevServer(llm)
    server.config.fail_models = {"Qwen/Qwen2.5-7B-Instruct"}  # the balanced role: reflections fall back to fast
    server.start()
    metrics_port, api_port = free_port(), free_port()
    env = {"MURMUR_LLM__BACKEND": "vllm", "MURMUR_LLM__EMBED_BACKEND": "vllm",
           "MURMUR_METRICS_PORT": str(metrics_port), "MURMUR_METRICS_SAMPLE_S": "1",
           "MURMUR_REFLECTION_EVERY_ROUNDS": "2"}  # reflections (the failing balanced role) early
    for role in ("FAST", "BALANCED", "HEAVY", "EMBED"):
        env[f"MURMUR_LLM__{role}__URL"] = server.url
    worker = start_worker(live, **env)
    api_name = f"api-{worker.settings.namespace}"
    api_env = {**worker.env, "MURMUR_API_PORT": str(api_port), "MURMUR_METRICS_PORT": "0",
               "MURMUR_QDRANT_PATH": str(tmp_path_factory.mktemp("qdrant-monitor"))}
    start_process(live, api_name, ["api"], env=api_env)
    base = f"http://127.0.0.1:{api_port}"

    def api_up() -> bool:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200

    try:
        wait_for(api_up, timeout=90, what=f"the API at {base}")
    except BaseException:
        print(process_log(live, api_name, 40))
        raise
    yield worker, base, f"http://127.0.0.1:{metrics_port}/metrics"
    stop_process(live, api_name)
    stop_process(live, worker.name)
    server.stop()


def publish(settings, events) -> None:
    Publisher(settings).publish(events)


def test_metrics_of_a_real_run_are_non_zero(pipeline):
    worker, base, metrics_url = pipeline
    settings = worker.settings
    sim = f"metrics-{uuid.uuid4().hex[:8]}"
    run = synthetic.generate(CASE, sim_id=sim, seed=3, agents=30, rounds=6)
    publish(settings, run.events)
    garbage = BatchProducer(make_producer(settings))  # a record no schema reads: a dead letter
    garbage.send(topic_name(AGENT_LOG), f"{sim}/intruder".encode(), b"\x00not avro at all")
    garbage.flush_blocking()
    store = CassandraStore(settings)
    try:
        wait_for(lambda: len(store.verdicts(sim)) >= 6, timeout=240, what="6 verdicts", worker=worker)
        # Round ends alone make verdicts: wait for the agent stage's memories too.
        memories = sum(1 for e in run.events if e.type_name in ("Post", "Observation"))
        wait_for(lambda: store.count_memories(sim, kinds=("post", "observation")) >= memories, timeout=300,
                 what=f"{memories} memories", worker=worker)
    finally:
        store.close()

    def sampled() -> bool:
        got = scrape(metrics_url)  # reflections fell back; the sampler saw the round-end checkpoints
        return (metric_sum(got["murmur_llm_fallbacks"]) > 0
                and all(s.value >= 0 for s in got["murmur_checkpoint_age_seconds"]))

    wait_for(sampled, timeout=60, what="a fallback and a checkpoint age in the metrics")
    got = scrape(metrics_url)
    # (family, label filter) that must be > 0 after this run, per issue 6.
    must = {
        "murmur_events_in": {"processor": "agent"},
        "murmur_events_out": {"processor": "agent"},
        "murmur_batch_processing_seconds": {},
        "murmur_event_age_seconds": {},
        "murmur_llm_calls": {"role": "fast"},
        "murmur_llm_tokens": {"role": "fast", "kind": "prompt"},
        "murmur_llm_latency_seconds": {"role": "fast"},
        "murmur_llm_failures": {"role": "balanced"},
        "murmur_llm_fallbacks": {"from_role": "balanced", "to_role": "fast"},
        "murmur_dead_letters": {"stage": "agent"},
        "murmur_sink_write_seconds": {"sink": "cassandra-sink"},
        "murmur_checkpoints": {"trigger": "round_end"},
    }
    report = {}
    for name, labels in must.items():
        assert name in got, f"{name} not served; families: {sorted(got)}"
        suffix = "_count" if name.endswith("_seconds") else ""
        report[name] = metric_sum(got[name], suffix, **labels)
    zero = sorted(k for k, v in report.items() if v <= 0)
    assert not zero, (zero, report)

    # Lag: one sample per input partition of the group (its value may be 0).
    lag = got["murmur_consumer_lag_messages"]
    parts = {(s.labels["topic"], s.labels["partition"]) for s in lag}
    expected = {(t, str(p)) for t in input_topics(settings, resolve("all")) for p in range(settings.topic_partitions)}
    assert expected <= parts, sorted(expected - parts)
    # Checkpoints were taken at round ends: an age, not "none yet" (-1).
    ages = [s.value for s in got["murmur_checkpoint_age_seconds"]]
    assert ages and all(0 <= a < 600 for a in ages), ages

    def qdrant_sink_wrote() -> bool:  # the API's Qdrant sink: its own consumer, landing on its own time
        api = scrape(f"{base}/metrics")
        return metric_sum(api["murmur_sink_write_seconds"], "_count", sink="qdrant-sink") > 0

    wait_for(qdrant_sink_wrote, timeout=120, what="the API's Qdrant sink to write")
    print(json.dumps(report, indent=1))


def sse_events(base: str, sim: str, until, timeout: float = 60.0) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{base}/simulations/{sim}/stream", timeout=timeout) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                out.append((event, json.loads(line[5:])))
                if until(out):
                    return out
            if time.monotonic() > deadline:
                break
    return out


def test_stream_sends_snapshot_counts_and_verdicts_of_one_sim_only(pipeline):
    import threading

    worker, base, _ = pipeline
    sim, other = f"sse-{uuid.uuid4().hex[:8]}", f"sse-other-{uuid.uuid4().hex[:8]}"
    run = synthetic.generate(CASE, sim_id=sim, seed=5, agents=20, rounds=3)
    noise = synthetic.generate(CASE, sim_id=other, seed=6, agents=20, rounds=3)
    # Publish once the stream is positioned (its first event is the snapshot).
    timer = threading.Timer(2.0, lambda: publish(worker.settings, noise.events + run.events))
    timer.start()
    try:
        events = sse_events(base, sim, until=lambda ev: sum(1 for e, _ in ev if e == "verdict") >= 3, timeout=180)
    finally:
        timer.join()
    names = [e for e, _ in events]
    assert names[0] == "snapshot" and events[0][1]["verdicts"] == []
    verdicts = [d for e, d in events if e == "verdict"]
    assert {v["round"] for v in verdicts} >= {0, 1, 2}, verdicts
    logged = sum(1 for e in run.events if e.type_name in ("Persona", "Post", "Observation"))
    counts = [d["topics"] for e, d in events if e == "counts"]
    # Counts cover this sim only: never more agent-log events than it published.
    assert counts and max(c.get(AGENT_LOG.name, 0) for c in counts) <= logged
    assert "lag" in names
    # Observations are counted, never sent.
    assert not any("content" in d for e, d in events if e not in ("reflection", "snapshot"))


def sse_raw(base: str, sim: str, until, timeout: float, headers: dict | None = None) -> list[dict]:
    """Events as {event, data, id, retry} dicts."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{base}/simulations/{sim}/stream", timeout=timeout, headers=headers or {}) as resp:
        assert resp.status_code == 200
        current: dict = {}
        for line in resp.iter_lines():
            if not line:
                if current:
                    out.append(current)
                    current = {}
                    if until(out):
                        return out
            else:
                field, _, value = line.partition(":")
                current[field] = value.strip()
            if time.monotonic() > deadline:
                break
    return out


def test_a_reconnect_with_last_event_id_gets_what_happened_while_away(pipeline):
    worker, base, _ = pipeline
    sim = f"sse-resume-{uuid.uuid4().hex[:8]}"
    first = sse_raw(base, sim, until=lambda ev: len(ev) >= 1, timeout=60)
    assert first[0]["event"] == "snapshot" and first[0]["id"].startswith("p1:") and first[0]["retry"] == "3000"
    # Away: the simulation runs and its verdicts are made with no one watching.
    run = synthetic.generate(CASE, sim_id=sim, seed=11, agents=20, rounds=3)
    publish(worker.settings, run.events)
    again = sse_raw(base, sim, until=lambda ev: sum(1 for e in ev if e.get("event") == "verdict") >= 3, timeout=180,
                    headers={"Last-Event-ID": first[0]["id"]})
    names = [e.get("event") for e in again]
    assert "snapshot" not in names  # resumed: the client has its history
    verdicts = [json.loads(e["data"]) for e in again if e.get("event") == "verdict"]
    assert {v["round"] for v in verdicts} >= {0, 1, 2}
    assert all(e["id"].startswith("p1:") for e in again)
    # A token it cannot read: a fresh start, and the snapshot says why.
    bad = sse_raw(base, sim, until=lambda ev: len(ev) >= 1, timeout=60, headers={"Last-Event-ID": "garbage"})
    snap = json.loads(bad[0]["data"])
    assert bad[0]["event"] == "snapshot" and "Last-Event-ID not resumed" in snap["resume_error"]
    assert {v["round"] for v in snap["verdicts"]} >= {0, 1, 2}


def test_monitor_page_in_headless_chromium_charts_a_real_run(pipeline):
    from playwright.sync_api import sync_playwright

    worker, base, _ = pipeline
    sim = f"monitor-{uuid.uuid4().hex[:8]}"
    run = synthetic.generate(CASE, sim_id=sim, seed=9, agents=40, rounds=6)
    by_round = defaultdict(list)
    for e in run.events:
        by_round[e.record.get("round", -1)].append(e)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "monitor.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/simulations/{sim}/monitor")
            page.wait_for_function("document.getElementById('status').textContent === 'live'", timeout=30_000)
            assert page.locator("#chart circle.support").count() == 0  # nothing published yet
            points = []
            for rnd in sorted(by_round):  # round by round, as a simulation produces them
                publish(worker.settings, by_round[rnd])
                if rnd >= 0:
                    page.wait_for_function(f"document.querySelectorAll('#chart circle.support').length >= {rnd + 1}",
                                           timeout=120_000)
                    points.append(page.locator("#chart circle.support").count())
            assert points == sorted(points) and points[-1] >= 6, points  # the chart grows round by round
            page.wait_for_function("document.querySelectorAll('#counts tr').length >= 4", timeout=30_000)
            page.wait_for_function("document.querySelectorAll('#lag tr').length >= 1", timeout=30_000)
            assert "round 5" in page.locator("#latest").inner_text()
            page.screenshot(path=str(shot), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
