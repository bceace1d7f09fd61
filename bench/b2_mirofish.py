"""B2: MiroFish's runner workload through Murmur's full pipeline, beside
MiroFish's own runner on the same workload size in the same run.

The synthetic population of ``connectors/synthetic.py`` (MiroFish's
archetypes; each round an agent is active with probability 0.35-0.95 and
posts once, with one observation of a post of the previous round), 1,000
agents (200 with --quick), 20 and 40 rounds, published at once to a worker
running every stage (``all``: agent, verdict, cassandra-sink, checkpointer;
deterministic LLM), after a 2-agent warm-up simulation has been through
every stage off the clock (the sink's first write connects and creates the
run's keyspace; ``setup_s`` in each run). Figures:

* posts/s until every post is queryable (its timeline row in Cassandra);
* posts/s until every stage has drained its inputs (reflections,
  conflicts, verdicts included);
* the drained rate with two workers of one group at 20 rounds (the same
  two cores);
* the rate per round decile (posts of those rounds / time between the last
  timeline write of the previous decile and of this one): whether it holds
  as the simulation grows.

Reference, measured in the same run: MiroFish's in-process runner
(``bench/mirofish_runner.py``: a separate process in a venv of its own, its
mock LLM, the same agents and rounds), posts of its record / its
whole-process wall time, run after Murmur's run of the same size (one at a
time: they share the cores), its imports warmed by an untimed 20 x 2 run
first, repeated at least 3 times (seconds a run): the median is the
reference. Murmur's rates are given as ratios to it, and each one's 40-vs-20
ratio says how it holds as the run grows. When the runner's folder is not
there (``MURMUR_MIROFISH_RUNNER``, default
``../shared/reference/mirofish-runner``), its figures are skipped and the
log says so; Murmur's still run.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import (ROOT, BenchError, Ctx, cassandra_writetimes, figure, publish, start_workers, stop_workers,
                          wait_drained, wait_members)
from bench import mirofish_runner
from connectors import synthetic

NAME = "B2"
TITLE = "MiroFish-like synthetic workload through the full pipeline"
CASE = ROOT / "eval" / "cases" / "new_coke_1985"
ROUNDS = (20, 40)


def one_run(ctx: Ctx, agents: int, rounds: int, case: Path = CASE, workers: int = 1) -> dict:
    sim = f"b2-a{agents}-r{rounds}-w{workers}-{time.strftime('%H%M%S')}"
    run = synthetic.generate(case, sim_id=sim, seed=7, agents=agents, rounds=rounds)
    posts_by_round: dict[int, int] = {}
    for e in run.events:
        if e.type_name == "Post":
            posts_by_round[e.record["round"]] = posts_by_round.get(e.record["round"], 0) + 1
    posts = sum(posts_by_round.values())
    w = start_workers(ctx, "all", count=workers, prefix="b2")
    try:
        wait_members(ctx.settings, w.group_id, workers)
        # A tiny simulation through every stage first, off the clock: the
        # sink connects and creates the namespace's keyspace at its first
        # write (34 s on this box once Cassandra held ~2,800 tables), which
        # a live deployment pays once, not per simulation; on the clock it
        # was most of the first decile.
        warm = synthetic.generate(case, sim_id=f"{sim}-warm", seed=7, agents=2, rounds=1)
        tw = time.time()
        publish(ctx.settings, warm.events)
        wait_drained(ctx, w, timeout=300)
        setup_s = time.time() - tw
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
    return {"sim": sim, "agents": agents, "rounds": rounds, "workers": workers, "posts": posts,
            "events": len(run.events), "setup_s": round(setup_s, 1), "publish_s": round(published_s, 2),
            "queryable_posts_per_s": posts / queryable_s, "drained_posts_per_s": posts / (drained_at - t0),
            "deciles": deciles, "drain_wait_s": round(drain_s, 1)}


def mirofish_repeats(ctx: Ctx) -> int:
    return max(3, ctx.repeats)


def mirofish_runs(ctx: Ctx, folder: Path, python: Path, agents: int, rounds: int) -> list[mirofish_runner.MirofishRun]:
    """MiroFish's runner at this size, at least 3 times: a run takes seconds
    (2-20 at full size), so a few cost little beside Murmur's one and steady
    the reference on a shared machine."""
    out = []
    for _ in range(mirofish_repeats(ctx)):
        m = mirofish_runner.run_once(folder, python, agents=agents, rounds=rounds,
                                     cache=mirofish_runner.venv_dir(ctx.settings.cache_dir))
        ctx.log(f"  B2 MiroFish's runner {agents} agents x {rounds} rounds: {m.posts} posts in {m.wall_s:.1f}s, "
                f"{m.posts_per_s:.0f} posts/s ({m.reflections} reflections, {m.conflicts} conflicts)")
        out.append(m)
    return out


def run(ctx: Ctx) -> dict:
    agents = 200 if ctx.quick else 1_000
    folder = mirofish_runner.locate()
    python, startup_s = None, 0.0
    if folder is None:
        ctx.log(f"  B2: MiroFish's runner not found at {mirofish_runner.configured_dir()} "
                f"(set {mirofish_runner.ENV_VAR}): its figures are skipped; Murmur's run alone")
    else:
        # Before Murmur's runs: a venv that cannot be made fails B2 at once, not after minutes.
        python = mirofish_runner.ensure_venv(mirofish_runner.venv_dir(ctx.settings.cache_dir), ctx.log)
        startup_s = mirofish_runner.warm_up(folder, python, cache=mirofish_runner.venv_dir(ctx.settings.cache_dir))
        ctx.log(f"  B2 MiroFish's runner at 20 agents x 2 rounds (about its start and imports): {startup_s:.2f}s")
    figures, runs, mf = {}, {}, {}
    for rounds in ROUNDS:
        r = one_run(ctx, agents, rounds)
        runs[rounds] = r
        ctx.log(f"  B2 {agents} agents x {rounds} rounds: {r['posts']} posts, "
                f"{r['queryable_posts_per_s']:.0f} posts/s queryable, {r['drained_posts_per_s']:.0f} posts/s drained; "
                f"deciles {[d['posts_per_s'] for d in r['deciles']]}")
        ref, ref_rate = None, None
        if python is not None:
            mf[rounds] = mirofish_runs(ctx, folder, python, agents, rounds)
            mf_rates = [m.posts_per_s for m in mf[rounds]]
            figures[f"r{rounds}_mirofish_posts_per_s"] = figure(
                mf_rates, unit="posts/s", posts=mf[rounds][0].posts,
                wall_s=[round(m.wall_s, 2) for m in mf[rounds]])
            ref_rate = figures[f"r{rounds}_mirofish_posts_per_s"]["median"]
            ref = f"MiroFish's runner, same run, {agents:,} x {rounds} ({mf[rounds][0].posts:,} posts)"
        figures[f"r{rounds}_queryable_posts_per_s"] = figure([r["queryable_posts_per_s"]], unit="posts/s", reference=ref,
                                                             reference_value=ref_rate, posts=r["posts"])
        figures[f"r{rounds}_drained_posts_per_s"] = figure([r["drained_posts_per_s"]], unit="posts/s", reference=ref,
                                                           reference_value=ref_rate, posts=r["posts"])
        first = r["deciles"][0]["posts_per_s"]
        figures[f"r{rounds}_last_decile_posts_per_s"] = figure(
            [r["deciles"][-1]["posts_per_s"]], unit="posts/s", reference="first decile of the same run",
            reference_value=first)
    # Two workers of one group on the same two cores (Kafka and Cassandra
    # too), at the smaller size: what a second process adds here.
    two = one_run(ctx, agents, ROUNDS[0], workers=2)
    ctx.log(f"  B2 {agents} agents x {ROUNDS[0]} rounds, 2 workers: {two['posts']} posts, "
            f"{two['drained_posts_per_s']:.0f} posts/s drained")
    ref_2w = figures.get(f"r{ROUNDS[0]}_mirofish_posts_per_s")
    figures[f"r{ROUNDS[0]}_drained_posts_per_s_2_workers"] = figure(
        [two["drained_posts_per_s"]], unit="posts/s", posts=two["posts"],
        reference=f"MiroFish's runner, same run, {agents:,} x {ROUNDS[0]}" if ref_2w else None,
        reference_value=ref_2w["median"] if ref_2w else None)
    a, b = (runs[n] for n in ROUNDS)
    mf_growth = None
    if mf:
        mf_growth = figures[f"r{ROUNDS[1]}_mirofish_posts_per_s"]["median"] / \
            figures[f"r{ROUNDS[0]}_mirofish_posts_per_s"]["median"]
        figures["mirofish_rate_40_vs_20_rounds"] = figure([mf_growth], unit="x", digits=3)
    figures["drained_rate_40_vs_20_rounds"] = figure(
        [b["drained_posts_per_s"] / a["drained_posts_per_s"]], unit="x", digits=3,
        reference="MiroFish's runner's 40-vs-20 ratio, same run" if mf else None, reference_value=mf_growth)
    return {"title": TITLE, "settings": {"agents": agents, "rounds": list(ROUNDS), "case": CASE.name, "seed": 7,
                                         "workers": f"1; 2 at {ROUNDS[0]} rounds", "processors": "all",
                                         "llm": "deterministic",
                                         "repeats": 1, "note": "one run per size: the per-decile rates show the spread",
                                         "mirofish": ({"runner": str(folder), "case": mirofish_runner.CASE,
                                                       "seed": mirofish_runner.SEED, "llm": "its mock",
                                                       "repeats": mirofish_repeats(ctx),
                                                       "timed": "whole process, wall",
                                                       "startup_s": round(startup_s, 2),
                                                       "requirements": list(mirofish_runner.REQUIREMENTS)}
                                                      if mf else "skipped: its runner's folder is not there")},
            "figures": figures, "runs": [*runs.values(), two],
            "mirofish_runs": [m.as_dict() for rs in mf.values() for m in rs]}
