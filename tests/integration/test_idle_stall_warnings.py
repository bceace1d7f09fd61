"""A worker idle for longer than Faust's stall timeout, then fed again,
logs no stall warning and loses nothing (issue: "has not committed TP ...
5.7 minutes ago" after a demo worker idled). The timeout is shortened to
6 s so the idle spell fits in a test; bench/idle_then_busy.py runs it at
Faust's default 300 s."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from connectors.publisher import Publisher
from deploy.pipeline import process_log, stop_process
from sinks.cassandra_store import CassandraStore
from tests.integration.conftest import start_worker, wait_for
from bench.common import post_events

pytestmark = pytest.mark.integration
WARNINGS = re.compile(r"has not committed|stream stopped processing|stream has not started", re.IGNORECASE)


def test_traffic_after_an_idle_spell_raises_no_stall_warning(live):
    w = start_worker(live, "all", MURMUR_FAUST_STALL_WARNING_S="6")
    store = CassandraStore(w.settings)
    publisher = Publisher(live)
    try:
        sim = f"idle-{uuid.uuid4().hex[:8]}"
        posts = lambda: store.count_memories(sim, kinds=("post",))  # noqa: E731
        publisher.publish(post_events(sim, 400, agents=40))
        wait_for(lambda: posts() == 400, timeout=120, what="the first posts", worker=w)
        time.sleep(14)  # idle: more than twice the timeout, several of Faust's checks (every 2.5 s)
        # Only what follows the resume counts: a slow start on a busy machine may be a real stall.
        before = len(process_log(live, w.name, 1_000_000).splitlines())
        publisher.publish(post_events(sim, 400, agents=40, first=400))
        wait_for(lambda: posts() == 800, timeout=120, what="the posts after the idle spell", worker=w)
        time.sleep(8)  # the checks after the resume
        after = process_log(live, w.name, 1_000_000).splitlines()[before:]
        hits = [line[:300] for line in after if WARNINGS.search(line)]
        assert hits == []
    finally:
        store.close()
        stop_process(live, w.name)
