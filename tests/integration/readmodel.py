"""Helpers for tests that compare whole read models: wait until a worker's
group has committed everything, then take every row of a simulation."""

from __future__ import annotations

import re

import pytest

from deploy import jvm
from eval.compare import differences, snapshot  # noqa: F401 (snapshot: the tests' import point)
from deploy.pipeline import stop_process
from streams.topology import input_topics, resolve
from streams.app import group_id
from streams.kafka import group_lag
from tests.integration.conftest import wait_for

LAGGING: list = []  # the partitions still behind at the last check, for the failure message


def drained(settings, processors: str = "all") -> bool:
    lag = group_lag(settings, group_id(settings, processors), input_topics(settings, resolve(processors)))
    LAGGING[:] = [p for p in lag if p.lag]
    return bool(lag) and all(p.lag == 0 for p in lag)


def wait_drained(settings, w, what: str, timeout: float = 180) -> None:
    try:
        wait_for(lambda: drained(settings), timeout=timeout, what=what, worker=w)
    except pytest.fail.Exception:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; still lagging: {LAGGING}")


def assert_same(got: dict, want: dict, what: str) -> None:
    for part, d in differences(got, want).items():
        assert d["same"], f"{part}: only {what} {d['examples_here']}, only in the reference {d['examples_reference']}"


def stopped(live, w) -> None:
    stop_process(live, w.name, timeout=30)  # SIGTERM: Faust commits on the way out
    jvm.wait_for(lambda: not jvm.alive(w.pid), 30)


def walk(client, url: str, **params) -> tuple[list[dict], int]:
    """Every row, following Link rel=next; and how many pages it took."""
    out, pages, resp = [], 0, client.get(url, params=params)
    while True:
        assert resp.status_code == 200, resp.text
        out += resp.json()
        pages += 1
        link = resp.headers.get("link")
        if not link:
            return out, pages
        resp = client.get(re.match(r'<([^>]+)>; rel="next"', link).group(1))
