"""``murmur eval run`` and ``murmur eval ablation``.

A run publishes the case as a fresh simulation (a seeded synthetic
population built from seed.md and question.md; ids are deterministic, so
publishing again adds nothing), replays it from Kafka with the deterministic
LLM through the batch path into the ``eval`` namespace, scores the final
verdict against truth.json, and stores the result: an EvalResult event, a
Cassandra row, a line of JSONL. Nothing in a result depends on the wall
clock, so two runs with the same inputs write byte-identical lines.

What the offline score means: with the deterministic backend and a synthetic
population, it says whether the pipeline carries the population's stance
into the verdict (``verdict_vs_generator``: the generator knows the
aggregate it generated), and how that lines up with truth.json. It does not
measure a model's forecasting skill; that needs the LLM path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from connectors import synthetic
from connectors.publisher import Publisher
from eval.replay import read_sim
from eval.scoring import load_truth, score
from processors.batch import BatchRuntime, SimOutputs, derive, run, verdicts
from streams.llm import DeterministicLlm
from processors.opinion import ALL_FEATURES, direction_of
from streams.ids import stable_id
from streams.settings import Settings
from streams.topics import EVAL_RESULTS, VERDICTS, sim_key, topic_name

EVAL_NAMESPACE = "eval"
# (variant, features, which reflections count: see MURMUR_VERDICT__REFLECTIONS).
# "+template-reflections" counts the deterministic backend's own template
# reflections, which the baseline leaves out: it shows what they did to a verdict.
ABLATIONS: list[tuple[str, frozenset[str], str]] = [
    ("baseline", frozenset(ALL_FEATURES), "model"),
    ("+template-reflections", frozenset(ALL_FEATURES), "all"),
    ("-importance", frozenset(ALL_FEATURES) - {"importance"}, "model"),
    ("-reflection", frozenset(ALL_FEATURES) - {"reflection"}, "model"),
    ("-contradiction", frozenset(ALL_FEATURES) - {"contradiction"}, "model"),
    ("-credibility", frozenset(ALL_FEATURES) - {"credibility"}, "model"),
    ("-conviction", frozenset(ALL_FEATURES) - {"conviction"}, "model"),
    ("-credibility-conviction", frozenset(ALL_FEATURES) - {"credibility", "conviction"}, "model"),
    ("-reflection-contradiction", frozenset(ALL_FEATURES) - {"reflection", "contradiction"}, "model"),
    ("none", frozenset(), "model"),
]


@dataclass(frozen=True)
class CaseSpec:
    case_dir: Path
    seed: int = 42
    agents: int = 40
    rounds: int = 8

    @property
    def name(self) -> str:
        return self.case_dir.name

    @property
    def sim_id(self) -> str:
        return f"eval-{self.name}-s{self.seed}-a{self.agents}-r{self.rounds}"


def eval_settings(settings: Settings) -> Settings:
    """The eval namespace, and the deterministic LLM whatever is configured."""
    llm = settings.llm.model_copy(update={"backend": "deterministic", "embed_backend": "deterministic"})
    return settings.model_copy(update={"namespace": EVAL_NAMESPACE, "llm": llm})


def publish_case(settings: Settings, spec: CaseSpec) -> synthetic.SyntheticRun:
    run = synthetic.generate(spec.case_dir, sim_id=spec.sim_id, seed=spec.seed, agents=spec.agents, rounds=spec.rounds)
    Publisher(settings).publish(run.events)
    return run


def replay_outputs(settings: Settings, spec: CaseSpec) -> tuple[SimOutputs, int, BatchRuntime]:
    es = eval_settings(settings)
    read = read_sim(settings, spec.sim_id)
    rt = BatchRuntime(es, DeterministicLlm(es))
    # A re-published case has its events twice in the log (same ids): count
    # events, not records, so the result does not depend on how often.
    return run(derive(rt, read.events, positions=read.positions)), len({r["event_id"] for _, r in read.events}), rt


def result_for(rt: BatchRuntime, spec: CaseSpec, question: str, out: SimOutputs, n_events: int, truth: dict,
               gen_truth: dict, features: frozenset[str]) -> tuple[dict, list[dict]]:
    per_round = run(verdicts(rt, out, sim_id=spec.sim_id, question=question, features=features))
    final = per_round[-1]
    s = score(final, truth)
    gen = gen_truth["mean_weighted_stance"]
    body = {
        "case": spec.name, "sim_id": spec.sim_id, "seed": spec.seed, "agents": spec.agents, "rounds": spec.rounds,
        "features": sorted(features),
        "verdict": {k: final[k] for k in ("round", "support_ratio", "direction", "magnitude", "confidence",
                                          "post_count", "author_count", "stance_positive", "stance_negative",
                                          "stance_neutral", "backend", "reflection_count", "posts_read",
                                          "posts_no_signal", "posts_unreadable", "coverage", "reflections_excluded")},
        "support_ratio_by_round": [v["support_ratio"] for v in per_round],
        "truth": {k: truth[k] for k in ("direction", "magnitude", "confidence")},
        "score": s,
        "generator": {"mean_weighted_stance": gen, "direction": direction_of(gen), "seed_lean": gen_truth["seed_lean"]},
        "verdict_vs_generator": {"direction_match": direction_of(gen) == final["direction"],
                                 "abs_error": round(abs(final["support_ratio"] - gen), 6)},
        "counts": {"events": n_events, "memories": len(out.memories), "reflections": len(out.reflections),
                   "conflicts": len(out.conflicts), "personas": len(out.personas)},
    }
    return body, per_round


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def event_of(body: dict, final_ts: int) -> dict:
    text = canonical(body)
    return {
        "event_id": stable_id("eval", text), "case": body["case"], "sim_id": body["sim_id"], "ts": final_ts,
        "features": body["features"], "predicted_direction": body["verdict"]["direction"],
        "support_ratio": body["verdict"]["support_ratio"], "confidence": body["verdict"]["confidence"],
        "truth_direction": body["truth"]["direction"], "truth_magnitude": float(body["truth"]["magnitude"]),
        "direction_match": body["score"]["direction_match"], "magnitude_error": body["score"]["magnitude_error"],
        "calibration": body["score"]["calibration"], "composite": body["score"]["composite"], "result_json": text,
    }


def store(settings: Settings, body: dict, per_round: list[dict], out_file: Path | None) -> dict:
    from sinks.cassandra_store import CassandraStore
    from streams.kafka import BatchProducer, create_topics, make_producer
    from streams.serde import default_serde

    es = eval_settings(settings)
    create_topics(es, namespace=EVAL_NAMESPACE)
    serde = default_serde()
    event = event_of(body, per_round[-1]["ts"])
    producer = BatchProducer(make_producer(settings))
    for v in per_round:
        producer.send(topic_name(VERDICTS, EVAL_NAMESPACE), sim_key(v["sim_id"]), serde.encode("Verdict", v, topic=topic_name(VERDICTS, EVAL_NAMESPACE)))
    producer.send(topic_name(EVAL_RESULTS), body["case"].encode(), serde.encode("EvalResult", event, topic=topic_name(EVAL_RESULTS)))
    producer.flush_blocking()
    db = CassandraStore(settings)  # results live in the main keyspace; verdicts in the eval one
    try:
        db.apply_schema()
        db.write_eval_result(event)
    finally:
        db.close()
    ev_db = CassandraStore(es)
    try:
        ev_db.apply_schema()
        for stmt, params in ev_db.verdict_writes(per_round):
            ev_db.connect().execute(stmt, params)
    finally:
        ev_db.close()
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with out_file.open("a", encoding="utf-8") as fh:
            fh.write(canonical(body) + "\n")
    return event


def run_case(settings: Settings, spec: CaseSpec, *, out_file: Path | None = None,
             features: frozenset[str] = frozenset(ALL_FEATURES)) -> dict:
    truth = load_truth(spec.case_dir)
    question = (spec.case_dir / "question.md").read_text(encoding="utf-8").strip()
    gen = publish_case(settings, spec)
    out, n, rt = replay_outputs(settings, spec)
    body, per_round = result_for(rt, spec, question, out, n, truth, gen.truth, features)
    store(settings, body, per_round, out_file)
    return body


def run_ablation(settings: Settings, spec: CaseSpec) -> list[dict]:
    """Upstream (importance, reflection, contradiction) is derived once; the
    verdict is recomputed for each feature set."""
    truth = load_truth(spec.case_dir)
    question = (spec.case_dir / "question.md").read_text(encoding="utf-8").strip()
    gen = publish_case(settings, spec)
    out, n, rt = replay_outputs(settings, spec)
    rows = []
    base = None
    for name, features, reflections in ABLATIONS:
        variant = BatchRuntime(rt.settings.model_copy(update={"verdict": rt.settings.verdict.model_copy(
            update={"reflections": reflections})}), rt.llm, rt.embedder_name)
        body, _ = result_for(variant, spec, question, out, n, truth, gen.truth, features)
        if base is None:
            base = body
        rows.append({"variant": name, "support_ratio": body["verdict"]["support_ratio"],
                     "direction": body["verdict"]["direction"], "confidence": body["verdict"]["confidence"],
                     "composite": body["score"]["composite"],
                     "d_support_ratio": round(body["verdict"]["support_ratio"] - base["verdict"]["support_ratio"], 6),
                     "d_composite": round(body["score"]["composite"] - base["score"]["composite"], 6)})
    return rows
