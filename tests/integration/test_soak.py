"""The soak's short variant (the full one is ``make soak``: 30 min at 300
events/s, every fault kind twice): the same runner and verifier, five kinds
once in 100 s. Cassandra away is left to the full run here: three tests of
tests/integration/test_faults.py take it away in CI already (away, killed,
away during a SIGTERM), and its restart is the slowest fault."""

from __future__ import annotations

import json

import pytest

from bench.soak import Config, Soak
from bench.soak_plan import KINDS

pytestmark = pytest.mark.integration


def test_soak_short_variant_every_fault_once(live, tmp_path):
    out = tmp_path / "soak.json"
    kinds = tuple(k for k in KINDS if k != "cassandra_away")
    cfg = Config(minutes=100 / 60, rate=60, every=20, outage=8, agents=120, rounds=8, replays=2, drain_timeout=300,
                 out=out, kinds=kinds)
    result = Soak(cfg, settings=live).run()
    brief = {k: result[k] for k in ("verifier", "faults_by_kind", "catch_up_after_input_end_s", "rss")}
    print("\nsoak (short):", json.dumps(brief))
    assert result["faults_by_kind"] == {k: 1 for k in kinds}
    v = result["verifier"]
    assert v["expected"] > 4000 and v["rows"] == v["expected"]
    assert (v["lost"], v["duplicated"], v["unexpected"], v["degraded"]) == (0, 0, 0, 0), v
    assert not result["unplanned_restarts"], result["unplanned_restarts"]
    assert result["simulations"] >= 3 and len(result["replays"]) == 2  # the two most faults fell on
    for r in result["replays"]:
        assert r["same"], json.dumps(r["differences"])[:2000]
        assert r["journal"]["misses"] == 0
    sigterm = next(f for f in result["faults"] if f["kind"] == "worker_sigterm")
    assert sigterm["exited_cleanly"]
    assert result["ok"]
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 10_000
    assert any(s["rss_mb"] for s in result["samples"]) and any(s["lag"] for s in result["samples"])
