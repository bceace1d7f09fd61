"""The soak's short variant (the full one is ``make soak``: 30 min at 300
events/s, every fault kind twice): the same runner, every fault kind once
in about two and a half minutes, then the same verifier."""

from __future__ import annotations

import json

import pytest

from bench.soak import Config, Soak
from bench.soak_plan import KINDS

pytestmark = pytest.mark.integration


def test_soak_short_variant_every_fault_once(live, tmp_path):
    out = tmp_path / "soak.json"
    cfg = Config(minutes=2.5, rate=60, every=25, outage=8, agents=120, rounds=8, replays=-1, drain_timeout=300,
                 out=out)
    result = Soak(cfg, settings=live).run()
    brief = {k: result[k] for k in ("verifier", "faults_by_kind", "catch_up_after_input_end_s", "rss")}
    print("\nsoak (short):", json.dumps(brief))
    assert result["faults_by_kind"] == {k: 1 for k in KINDS}
    v = result["verifier"]
    assert v["expected"] > 3000 and v["rows"] == v["expected"]
    assert (v["lost"], v["duplicated"], v["unexpected"], v["degraded"]) == (0, 0, 0, 0), v
    assert not result["unplanned_restarts"], result["unplanned_restarts"]
    assert len(result["replays"]) == result["simulations"] >= 2
    for r in result["replays"]:
        assert r["same"], json.dumps(r["differences"])[:2000]
        assert r["journal"]["misses"] == 0
    sigterm = next(f for f in result["faults"] if f["kind"] == "worker_sigterm")
    assert sigterm["exited_cleanly"]
    assert result["ok"]
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 10_000
    assert any(s["rss_mb"] for s in result["samples"]) and any(s["lag"] for s in result["samples"])
