"""B2: MiroFish's runner workload through Murmur's full pipeline.

The synthetic population of ``connectors/synthetic.py`` (MiroFish's
archetypes; each round an agent is active with probability 0.35-0.95 and
posts once, with one observation of a post of the previous round), 1,000
agents, 20 and 40 rounds, published at once to a worker running every
stage (``all``: agent, verdict, cassandra-sink, checkpointer; deterministic
LLM). Figures:

* posts/s until every post is queryable (its timeline row in Cassandra);
* posts/s until every stage has drained its inputs (reflections,
  conflicts, verdicts included);
* the rate per round decile (posts of those rounds / time between the last
  timeline write of the previous decile and of this one): whether it holds
  as the simulation grows.

Reference: MiroFish's published figures for its in-process memory layer
(1,330 posts/s at 11,000 posts, 950 at 22,000; its eval runner, mock LLM,
1,000 agents, 20 and 40 rounds). Not measured here: another program on
another machine, quoted for scale only.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import (ROOT, BenchError, Ctx, cassandra_writetimes, figure, publish, start_workers, stop_workers,
                          wait_drained, wait_members)
from connectors import synthetic

NAME = "B2"
TITLE = "MiroFish-like synthetic workload through the full pipeline"
CASE = ROOT / "eval" / "cases" / "new_coke_1985"
MIROFISH = {20: (11_000, 1_330.0), 40: (22_000, 950.0)}  # rounds -> (posts, posts/s), published, not measured here


def one_run(ctx: Ctx, agents: int, rounds: int, case: Path = CASE) -> dict:
    sim = f"b2-a{agents}-r{rounds}-{time.strftime('%H%M%S')}"
    run = synthetic.generate(case, sim_id=sim, seed=7, agents=agents, rounds=rounds)
    posts_by_round: dict[int, int] = {}
    for e in run.events:
        if e.type_name == "Post":
            posts_by_round[e.record["round"]] = posts_by_round.get(e.record["round"], 0) + 1
    posts = sum(posts_by_round.values())
    w = start_workers(ctx, "all", prefix="b2")
    try:
        wait_members(ctx.settings, w.group_id, 1)
        t0 = time.time()
        publish(ctx.settings, run.events)
        published_s = time.time() - t0
        drain_s = wait_drained(ctx, w, timeout=max(300.0, posts / 20))
        drained_at = time.time()
    finally:
        stop_workers(ctx, w)
    rows = cassandra_writetimes(w.settings, "SELECT WRITETIME(content), ts FROM {ks}.timeline_by_sim WHERE sim_id = %s",
                                (sim,), extra=True)
    if len(rows) < posts:
        raise BenchError(f"{sim}: {len(rows)}/{posts} timeline rows after the pipeline drained")
    last_by_round: dict[int, int] = {}
    for wt, ts in rows:
        r = int((ts - synthetic.START_MS) // synthetic.ROUND_MS)
        last_by_round[r] = max(last_by_round.get(r, 0), wt)
    queryable_s = (max(last_by_round.values()) / 1000) - t0
    # Deciles of the rounds: completion of a decile = last timeline write of its rounds.
    deciles, prev = [], t0
    for d in range(10):
        rs = [r for r in range(rounds) if r * 10 // rounds == d]
        if not rs:
            continue
        done = max(last_by_round[r] for r in rs) / 1000
        n = sum(posts_by_round.get(r, 0) for r in rs)
        deciles.append({"decile": d, "rounds": [rs[0], rs[-1]], "posts": n,
                        "posts_per_s": round(n / max(done - prev, 1e-3), 1)})
        prev = max(prev, done)
    return {"sim": sim, "agents": agents, "rounds": rounds, "posts": posts,
            "events": len(run.events), "publish_s": round(published_s, 2),
            "queryable_posts_per_s": posts / queryable_s, "drained_posts_per_s": posts / (drained_at - t0),
            "deciles": deciles, "drain_wait_s": round(drain_s, 1)}


def run(ctx: Ctx) -> dict:
    agents = 200 if ctx.quick else 1_000
    figures, runs = {}, []
    for rounds in (20, 40):
        r = one_run(ctx, agents, rounds)
        runs.append(r)
        ctx.log(f"  B2 {agents} agents x {rounds} rounds: {r['posts']} posts, "
                f"{r['queryable_posts_per_s']:.0f} posts/s queryable, {r['drained_posts_per_s']:.0f} posts/s drained; "
                f"deciles {[d['posts_per_s'] for d in r['deciles']]}")
        mf_posts, mf_rate = MIROFISH[rounds]
        ref = f"MiroFish published, {mf_posts:,} posts (NOT measured here)"
        figures[f"r{rounds}_queryable_posts_per_s"] = figure([r["queryable_posts_per_s"]], unit="posts/s", reference=ref,
                                                             reference_value=mf_rate, posts=r["posts"])
        figures[f"r{rounds}_drained_posts_per_s"] = figure([r["drained_posts_per_s"]], unit="posts/s", reference=ref,
                                                           reference_value=mf_rate, posts=r["posts"])
        first = r["deciles"][0]["posts_per_s"]
        figures[f"r{rounds}_last_decile_posts_per_s"] = figure(
            [r["deciles"][-1]["posts_per_s"]], unit="posts/s", reference="first decile of the same run",
            reference_value=first)
    a, b = runs
    figures["drained_rate_40_vs_20_rounds"] = figure(
        [b["drained_posts_per_s"] / a["drained_posts_per_s"]], unit="x", digits=3,
        reference="MiroFish's own 40-vs-20 ratio, 950/1,330 (NOT measured here)", reference_value=950 / 1330)
    return {"title": TITLE, "settings": {"agents": agents, "rounds": [20, 40], "case": CASE.name, "seed": 7,
                                         "workers": 1, "processors": "all", "llm": "deterministic",
                                         "repeats": 1, "note": "one run per size: the per-decile rates show the spread"},
            "figures": figures, "runs": runs}
