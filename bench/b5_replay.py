"""B5: eval replay events/s, through the Faust path and through the batch path.

One synthetic simulation (``connectors/synthetic.py``) is replayed:

* Faust path: published as a backlog, then a worker running every stage
  (group committed before the backlog) replays it; events/s from its first
  output (Kafka timestamp) until every stage drained (lag 0, sampled
  every 0.5 s, so up to ~1 s late);
* batch path end to end: ``eval.replay.replay_sim`` (read the agent log,
  rounds and simulations from where the simulation begins, its first
  recorded start, to their end offsets, the live worker's agent pass over
  each agent's events in log order, then the verdict; outputs produced to
  the namespace's topics and written to its keyspace); and the same reading
  every offset (``--from-beginning``, what every replay did before starts
  were recorded), whose time grows with everything published before: each
  figure's ``records_read`` says how much was read;
* batch path compute only: ``processors.batch.derive`` + ``verdicts`` on the
  events in memory (``bench/b5_compute.py`` runs just this, with a digest
  of the outputs' bytes and a profile).

The performance pass (contradiction's similarities as one numpy product per
memory) is shown before/after here: the batch compute with
``settings.contradiction_cosine`` = "python" (before) and "numpy" (after),
same events, outputs compared; and the Faust path with
``MURMUR_CONTRADICTION_COSINE`` = python and numpy.
"""

from __future__ import annotations

import time
import uuid

from bench import b5_compute
from bench.common import (ROOT, Ctx, figure, publish, start_workers, stop_workers, topic_timestamps, wait_drained,
                          wait_members)
from connectors import synthetic
from streams.topics import SCORED, topic_name

NAME = "B5"
TITLE = "eval replay: Faust path vs batch path"
CASE = ROOT / "eval" / "cases" / "ireland_smoking_ban_2004"


def faust_path(ctx: Ctx, run: synthetic.SyntheticRun, cosine: str) -> float:
    w = start_workers(ctx, "all", prefix="b5", env={"MURMUR_CONTRADICTION_COSINE": cosine},
                      before_start=lambda: publish(ctx.settings, run.events))
    try:
        wait_members(ctx.settings, w.group_id, 1)
        wait_drained(ctx, w, timeout=max(300.0, len(run.events) / 5))
        end = time.time()
        first = min(topic_timestamps(ctx.settings, topic_name(SCORED, w.settings.namespace))) / 1000
        return len(run.events) / (end - first)
    finally:
        stop_workers(ctx, w)


def batch_compute(ctx: Ctx, events: list[tuple[str, dict]], sim: str, cosine: str) -> tuple[float, list]:
    """Events/s of the batch path's compute (wall clock, timed inside the
    coroutine: bench/b5_compute.py) and its outputs, to compare between modes."""
    settings = ctx.settings.model_copy(update={"contradiction_cosine": cosine})
    seconds, outputs = b5_compute.compute(events, sim, settings, clock=time.perf_counter)
    return len(events) / seconds, outputs


def batch_end_to_end(ctx: Ctx, sim: str, *, from_beginning: bool = False) -> tuple[float, dict]:
    """``murmur replay`` of the simulation: from where it begins (its first
    recorded start, streams/sim_starts.py), or reading every offset."""
    from eval.replay import replay_sim

    t0 = time.perf_counter()
    summary = replay_sim(ctx.settings, sim, namespace=f"b5r{uuid.uuid4().hex[:6]}", from_beginning=from_beginning)
    return summary["events"] / (time.perf_counter() - t0), summary


def run(ctx: Ctx) -> dict:
    agents, rounds = (60, 8) if ctx.quick else (250, 12)
    sim = f"b5-a{agents}-r{rounds}-{uuid.uuid4().hex[:6]}"
    run_ = synthetic.generate(CASE, sim_id=sim, seed=11, agents=agents, rounds=rounds)
    events = [(e.type_name, e.record) for e in run_.events]
    faust = {"numpy": [], "python": []}
    compute = {"numpy": [], "python": []}
    e2e, e2e_all, summary, summary_all = [], [], {}, {}
    same_outputs = True
    for rep in range(ctx.repeats):
        for cosine in ("python", "numpy"):
            rate, outs = batch_compute(ctx, events, sim, cosine)
            compute[cosine].append(rate)
            if cosine == "numpy" and rep == 0:
                same_outputs = outs == reference_outs
            reference_outs = outs
            faust[cosine].append(faust_path(ctx, run_, cosine))
            ctx.log(f"  B5 contradiction cosine {cosine}: Faust path {faust[cosine][-1]:.0f} events/s, "
                    f"batch compute {compute[cosine][-1]:.0f} events/s")
        rate, summary = batch_end_to_end(ctx, sim)  # the sim is in the log from the first Faust run
        e2e.append(rate)
        ctx.log(f"  B5 batch path end to end (replay_sim): {rate:.0f} events/s ({summary['records_read']} records read "
                f"from {summary['read_from']})")
        rate, summary_all = batch_end_to_end(ctx, sim, from_beginning=True)
        e2e_all.append(rate)
        ctx.log(f"  B5 batch path end to end, every offset read: {rate:.0f} events/s "
                f"({summary_all['records_read']} records read)")
    ref = "Faust path (numpy cosine), same run"
    f_ref = sorted(faust["numpy"])[len(faust["numpy"]) // 2]
    figures = {
        "faust_path": figure(faust["numpy"], unit="events/s"),
        "batch_compute": figure(compute["numpy"], unit="events/s", reference=ref, reference_value=f_ref),
        "batch_end_to_end": figure(e2e, unit="events/s", reference=ref, reference_value=f_ref,
                                   records_read=summary.get("records_read")),
        "batch_end_to_end_from_beginning": figure(
            e2e_all, unit="events/s", reference="batch end to end from the simulation's start, same run",
            reference_value=sorted(e2e)[len(e2e) // 2], records_read=summary_all.get("records_read")),
        "faust_path_python_cosine": figure(faust["python"], unit="events/s", reference=ref, reference_value=f_ref),
        "batch_compute_python_cosine": figure(compute["python"], unit="events/s",
                                              reference="batch compute (numpy cosine), same run",
                                              reference_value=sorted(compute["numpy"])[len(compute["numpy"]) // 2]),
    }
    return {"title": TITLE, "settings": {"agents": agents, "rounds": rounds, "events": len(events), "case": CASE.name,
                                         "llm": "deterministic"},
            "outputs_identical_python_vs_numpy_cosine": same_outputs, "replay_summary": summary,
            "figures": figures}
