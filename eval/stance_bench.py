"""``murmur eval stance``: a stance model scored on human-labelled posts.

Data in TweetEval's stance format: one folder per target, each holding
``<split>_text.txt`` (one post a line) and ``<split>_labels.txt`` (one label a
line: 0 none, 1 against, 2 favor). For each target:

* the benchmark's metric: the mean of the F1 of "favor" and of "against"
  (SemEval-2016 Task 6, TweetEval), per target and pooled over all targets,
  from the model's readings (favor: valence >= 0.2, against: <= -0.2, none
  otherwise; a post the model cannot read counts as none, and as not covered);
* the verdict: the target's posts as one population (one post per agent,
  equal personas, one round) through the pipeline's own verdict functions
  (``processors/batch.py``), against the true balance (favor - against) / n.
  A verdict is *confidently wrong* when its confidence is >= 0.2 and its
  direction is the opposite of the balance's.

The question of each target is its folder name unless ``--target NAME=TEXT``
says otherwise (a stance model reads a post against the question it is
asked). ``--train`` first fits the linear model (``processors/stance_model.py``)
on every target's train split and scores that; with ``--held-out`` each
target is scored by a model trained on the other targets only, which is what
a new simulation's question looks like to a trained model.

Results print as a table or JSON and are stored like other eval results:
one EvalResult per target (``stance:<target>``), a Cassandra row, a JSONL line.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from eval.scoring import score
from processors.batch import BatchRuntime, SimOutputs, verdicts
from processors.opinion import direction_of
from processors.stance import reading_of
from processors.stance_model import READ, LinearModel, Reading
from streams.settings import Settings
from streams.runtime import Incoming

LABEL_NAMES = {0: "none", 1: "against", 2: "favor"}
CONFIDENT = 0.2


@dataclass
class Target:
    name: str
    question: str
    texts: list[str]
    labels: list[int]

    @property
    def balance(self) -> float:
        n = len(self.labels)
        return (self.labels.count(2) - self.labels.count(1)) / n if n else 0.0


def load(data: Path, split: str, questions: dict[str, str] | None = None) -> list[Target]:
    """Every target folder of ``data`` with this split; errors name the file and line."""
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: not a folder (expected one folder per target)")
    out = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        text_file, label_file = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
        if not text_file.is_file():
            continue
        texts = text_file.read_text(encoding="utf-8").splitlines()
        labels = []
        for i, raw in enumerate(label_file.read_text(encoding="utf-8").splitlines(), start=1):
            if raw.strip() not in ("0", "1", "2"):
                raise ValueError(f"{label_file}:{i}: label must be 0 (none), 1 (against) or 2 (favor), got {raw!r}")
            labels.append(int(raw))
        if len(texts) != len(labels):
            raise ValueError(f"{folder}: {len(texts)} posts but {len(labels)} labels")
        out.append(Target(folder.name, (questions or {}).get(folder.name, folder.name), texts, labels))
    if not out:
        raise FileNotFoundError(f"{data}: no target folder holds {split}_text.txt")
    return out


def predicted(reading: Reading) -> int:
    if reading.status != READ:
        return 0
    return 2 if reading.valence > 0 else 1


def macro_f1(pairs: list[tuple[int, int]]) -> dict:
    """(predicted, gold) -> the F1 of favor, of against, and their mean, x100."""
    out = {}
    for label in (2, 1):
        tp = sum(1 for p, g in pairs if p == label and g == label)
        fp = sum(1 for p, g in pairs if p == label and g != label)
        fn = sum(1 for p, g in pairs if p != label and g == label)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        out[LABEL_NAMES[label]] = round(100 * 2 * prec * rec / (prec + rec), 2) if prec + rec else 0.0
    out["macro"] = round((out["favor"] + out["against"]) / 2, 2)
    return out


async def score_target(rt: BatchRuntime, target: Target) -> tuple[dict, list[tuple[int, int]]]:
    readings = await asyncio.gather(*(reading_of(rt, t, target.question, sim_id=f"stance-{target.name}", round_=0)
                                      for t in target.texts))
    by_text = dict(zip(target.texts, readings))

    async def cached(_rt, text: str, _question: str, **_kw) -> Reading:
        return by_text[text]

    out = SimOutputs(round_ends={0: 0})
    memories = [{"event_id": f"{target.name}-{i}", "memory_id": f"{target.name}-{i}", "sim_id": f"stance-{target.name}",
                 "round": 0, "ts": 0, "agent_id": f"a{i}", "kind": "post", "public": True, "action": "CREATE_POST",
                 "platform": "", "content": text, "importance": 5, "importance_fallback": False, "scorer": "",
                 "embedding": [], "embedding_f32": b"", "embedder": ""} for i, text in enumerate(target.texts)]
    # Each tweet one author's only post: what the agent pass gives the stance step.
    out.stance_inputs = {m["agent_id"]: [Incoming("ScoredMemory", m, "", 0, i, None)] for i, m in enumerate(memories)}
    (verdict,) = await verdicts(rt, out, sim_id=f"stance-{target.name}", question=target.question, reader=cached)
    pairs = [(predicted(r), g) for r, g in zip(readings, target.labels)]
    truth = {"direction": direction_of(target.balance), "magnitude": round(abs(target.balance), 6)}
    wrong = verdict["confidence"] >= CONFIDENT and {verdict["direction"], truth["direction"]} == {"positive", "negative"}
    row = {
        "target": target.name, "question": target.question, "n": len(target.texts),
        "f1": macro_f1(pairs), "unreadable": sum(1 for r in readings if r.status == "unreadable"),
        "models": sorted({r.model for r in readings}),
        "balance": round(target.balance, 6), "truth": truth,
        "verdict": {k: verdict[k] for k in ("support_ratio", "direction", "magnitude", "confidence", "coverage",
                                            "post_count", "posts_read", "posts_no_signal", "posts_unreadable",
                                            "backend")},
        "score": score(verdict, truth), "confidently_wrong": wrong,
    }
    return row, pairs


def train_model(targets: list[Target], *, exclude: str | None = None, meta: dict | None = None) -> LinearModel:
    texts = [t for tg in targets if tg.name != exclude for t in tg.texts]
    labels = [lab for tg in targets if tg.name != exclude for lab in tg.labels]
    return LinearModel.train(texts, labels, meta=meta)


def with_model(settings: Settings, path: Path) -> Settings:
    return settings.model_copy(update={"verdict": settings.verdict.model_copy(update={"stance_model": f"linear:{path}"})})


def run(settings: Settings, data: Path, *, split: str = "val", questions: dict[str, str] | None = None,
        train: bool = False, held_out: bool = False, model_dir: Path | None = None) -> dict:
    from streams.llm import make_llm

    targets = load(data, split, questions)
    model_dir = model_dir or settings.state_dir / "models"
    rows, pooled = [], []
    trained = None
    if train:
        training = load(data, "train", questions)
        model_dir.mkdir(parents=True, exist_ok=True)
        if not held_out:
            model = train_model(training, meta={"trained_on": str(data), "split": "train",
                                                "targets": [t.name for t in training]})
            trained = model_dir / "stance-linear.json"
            model.save(trained)
            settings = with_model(settings, trained)
    for target in targets:
        s = settings
        if train and held_out:
            model = train_model(training, exclude=target.name, meta={"trained_on": str(data), "split": "train",
                                                                     "held_out": target.name})
            path = model_dir / f"stance-linear-without-{target.name}.json"
            model.save(path)
            s = with_model(settings, path)
        rt = BatchRuntime(s, make_llm(s))
        row, pairs = asyncio.run(score_target(rt, target))
        rows.append(row)
        pooled += pairs
    return {
        "data": str(data), "split": split, "train": train, "held_out": held_out,
        "model": "+".join(sorted({m for r in rows for m in r["models"]})),
        "model_file": str(trained) if trained else None,
        "pooled": {"n": len(pooled), "f1": macro_f1(pooled),
                   "confidently_wrong": [r["target"] for r in rows if r["confidently_wrong"]]},
        "targets": rows,
    }


def table(result: dict) -> str:
    lines = [f"stance model {result['model']} on {result['data']} ({result['split']})"
             + (", trained on the other targets' train split" if result["held_out"] else
                ", trained on the train split" if result["train"] else ""),
             f"{'target':12} {'n':>4} {'F1':>6} {'favor':>6} {'against':>7} {'unread':>6} {'balance':>8} "
             f"{'verdict':12} {'ratio':>7} {'conf':>6} {'cover':>6}"]
    for r in result["targets"]:
        v = r["verdict"]
        lines.append(f"{r['target'][:12]:12} {r['n']:4d} {r['f1']['macro']:6.1f} {r['f1']['favor']:6.1f} "
                     f"{r['f1']['against']:7.1f} {r['unreadable']:6d} {r['balance']:+8.2f} {v['direction']:12} "
                     f"{v['support_ratio']:+7.3f} {v['confidence']:6.3f} {v['coverage']:6.2f}"
                     + ("  CONFIDENTLY WRONG" if r["confidently_wrong"] else ""))
    p = result["pooled"]
    lines.append(f"{'pooled':12} {p['n']:4d} {p['f1']['macro']:6.1f} {p['f1']['favor']:6.1f} {p['f1']['against']:7.1f}")
    return "\n".join(lines)


def store(settings: Settings, result: dict, out_file: Path | None) -> None:
    """One EvalResult per target (case ``stance:<target>``), its Cassandra row, a JSONL line."""
    import json

    from eval.runner import canonical, event_of
    from sinks.cassandra_store import CassandraStore
    from streams.kafka import BatchProducer, create_topics, make_producer
    from streams.serde import default_serde
    from streams.topics import EVAL_RESULTS, topic_name

    create_topics(settings)
    serde = default_serde()
    producer = BatchProducer(make_producer(settings))
    events = []
    for r in result["targets"]:
        body = {"case": f"stance:{r['target']}", "sim_id": f"stance-{result['split']}-{r['target']}",
                "features": [f"stance:{result['model']}"] + (["held-out"] if result["held_out"] else []),
                "verdict": r["verdict"], "truth": r["truth"], "score": r["score"], "f1": r["f1"],
                "data": result["data"], "split": result["split"]}
        event = event_of(body, 0)
        events.append(event)
        producer.send(topic_name(EVAL_RESULTS), body["case"].encode(), serde.encode("EvalResult", event, topic=topic_name(EVAL_RESULTS)))
    producer.flush_blocking()
    db = CassandraStore(settings)
    try:
        db.apply_schema()
        for event in events:
            db.write_eval_result(event)
    finally:
        db.close()
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with out_file.open("a", encoding="utf-8") as fh:
            fh.write(canonical({"stance": json.loads(json.dumps(result))}) + "\n")
