"""Two runs of one simulation side by side: what ``murmur eval compare`` says.

A run is a read model's rows for the simulation (:func:`eval.compare.snapshot`)
and, when it has any, the LlmCall records its workers wrote. :func:`compare_runs`
pairs the rows of the two runs by their ids (verdicts by round) and says which
differ and how; :func:`render` writes that as text. Nothing here reads a
service (``eval/run_reader.py`` does), so every decision is testable on rows.

The first run is the reference (``a``: the live run unless told otherwise),
the second the one under study (``b``: usually a replay).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from eval.compare import differences, same

VERDICT_FIELDS = ("support_ratio", "post_count", "author_count", "stance_positive", "stance_negative", "flips")
# Position of each compared field in the snapshot's rows (eval.compare.snapshot).
MEMORY_FIELDS = {"kind": 1, "importance": 2, "validity": 3, "supersession": 4}
REFLECTION_FIELDS = {"sources": 1, "content": 2}
CONFLICT_FIELDS = {"old_memory_id": 1, "new_memory_id": 2}


def llm_usage(records: Iterable[dict]) -> dict | None:
    """Calls and tokens of one run's LlmCall records (one simulation's).

    None when there is no record at all: the run did not record its calls
    (a replay answered wholly from its journal made none; one from before
    replays recorded theirs has none), which is not the same as a count. A record
    seen twice (a redelivered batch's deterministic call, a producer retry)
    has the same event id and counts once."""
    seen: dict[str, dict] = {}
    for r in records:
        seen.setdefault(r["event_id"], r)
    if not seen:
        return None
    out: dict[str, Any] = {"calls": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0, "by_role": {},
                           "backends": sorted({r.get("backend", "") for r in seen.values()})}
    for r in seen.values():
        role = out["by_role"].setdefault(r["role"], {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
        for d in (out, role):
            d["calls"] += 1
            d["prompt_tokens"] += int(r.get("prompt_tokens") or 0)
            d["completion_tokens"] += int(r.get("completion_tokens") or 0)
        out["failed"] += r.get("status") == "failed"
    out["by_role"] = dict(sorted(out["by_role"].items()))
    return out


def verdict_rounds(a_rows: Iterable[tuple], b_rows: Iterable[tuple]) -> list[dict]:
    """One line per round either run has a verdict for, in round order."""
    a = {r[0]: dict(zip(VERDICT_FIELDS, r[1:])) for r in a_rows}
    b = {r[0]: dict(zip(VERDICT_FIELDS, r[1:])) for r in b_rows}
    return [{"round": n, "a": a.get(n), "b": b.get(n), "differs": a.get(n) != b.get(n)}
            for n in sorted(a.keys() | b.keys())]


def keyed_changes(a_rows: Iterable[tuple], b_rows: Iterable[tuple], fields: dict[str, int], *,
                  examples: int = 5, show: Callable[[tuple], Any] = lambda r: r[0]) -> dict:
    """Rows paired by their id (first element): how many are only in one run,
    and per field how many paired rows differ in it, with a few examples."""
    a, b = {r[0]: r for r in a_rows}, {r[0]: r for r in b_rows}
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    changed = {name: [] for name in fields}
    differing = 0
    for key in sorted(a.keys() & b.keys()):
        moved = [name for name, i in fields.items() if a[key][i] != b[key][i]]
        differing += bool(moved)
        for name in moved:
            changed[name].append({"id": key, "a": a[key][fields[name]], "b": b[key][fields[name]]})
    return {"a": len(a), "b": len(b), "only_a": len(only_a), "only_b": len(only_b),
            "examples_only_a": [show(a[k]) for k in only_a[:examples]],
            "examples_only_b": [show(b[k]) for k in only_b[:examples]],
            "differing": differing,
            "changed": {name: {"count": len(rows), "examples": rows[:examples]} for name, rows in changed.items()}}


def _reflection(row: tuple) -> dict:
    return {"id": row[0], "sources": len(row[1]), "content": row[2][:100]}


def _conflict(row: tuple) -> dict:
    return {"id": row[0], "old_memory_id": row[1], "new_memory_id": row[2]}


def compare_runs(sim: str, a: dict, b: dict, *, examples: int = 5) -> dict:
    """``a`` and ``b``: ``{"name", "snapshot", "llm"}`` (``llm``: :func:`llm_usage`'s
    answer). Equal means every row of the snapshots is the same, as
    :func:`eval.compare.differences` judges it (LLM usage is reported, not
    judged: a replay answered from a journal makes no call at all)."""
    sa, sb = a["snapshot"], b["snapshot"]
    rounds = verdict_rounds(sa.get("verdicts", ()), sb.get("verdicts", ()))
    parts = differences(sb, sa, examples=0)
    return {
        "sim": sim, "a": a["name"], "b": b["name"], "equal": same(parts),
        "parts_equal": {part: d["same"] for part, d in parts.items()},
        "verdicts": {"a": len(sa.get("verdicts", ())), "b": len(sb.get("verdicts", ())),
                     "rounds_differing": [r["round"] for r in rounds if r["differs"]], "rounds": rounds},
        "memories": keyed_changes(sa.get("memories", ()), sb.get("memories", ()), MEMORY_FIELDS, examples=examples),
        "reflections": keyed_changes(sa.get("reflections", ()), sb.get("reflections", ()), REFLECTION_FIELDS,
                                     examples=examples, show=_reflection),
        "conflicts": keyed_changes(sa.get("conflicts", ()), sb.get("conflicts", ()), CONFLICT_FIELDS,
                                   examples=examples, show=_conflict),
        "llm": {"a": a.get("llm"), "b": b.get("llm")},
    }


# -- text ------------------------------------------------------------------------
CELL = 40  # one run's columns in the verdict table


def _value(name: str, value: Any) -> str:
    """A compared value as text; a validity end (ms) as UTC time."""
    if name == "validity" and isinstance(value, int):
        from datetime import datetime, timezone

        return datetime.fromtimestamp(value / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(value)[:60]

def _verdict_cell(v: dict | None) -> str:
    if v is None:
        return f"{'-':>{CELL}}"
    return (f"{v['support_ratio']:+7.3f} {v['post_count']:6d} {v['author_count']:7d} "
            f"{v['stance_positive']:5d}/{v['stance_negative']:<5d} {v['flips']:5d}")


def _usage(u: dict | None) -> str:
    if u is None:
        return "not recorded"
    roles = ", ".join(f"{role} {d['calls']:,}" for role, d in u["by_role"].items())
    failed = f", {u['failed']:,} failed" if u["failed"] else ""
    return (f"{u['calls']:,} calls{failed} ({roles}); {u['prompt_tokens']:,} prompt + "
            f"{u['completion_tokens']:,} completion tokens")


def _keyed_lines(title: str, d: dict, a: str, b: str) -> list[str]:
    moved = ", ".join(f"{name} {c['count']:,}" for name, c in d["changed"].items())
    lines = [f"{title}: {d['a']:,} in {a}, {d['b']:,} in {b}; only in {a} {d['only_a']:,}, only in {b} "
             f"{d['only_b']:,}; {d['differing']:,} in both differ ({moved})"]
    for name, c in d["changed"].items():
        lines += [f"  {name:12} {e['id']}: {a} {_value(name, e['a'])}  |  {b} {_value(name, e['b'])}"
                  for e in c["examples"]]
    for side, key in ((a, "examples_only_a"), (b, "examples_only_b")):
        lines += [f"  only in {side}: {e['id']} " + ", ".join(f"{k} {v}" for k, v in e.items() if k != "id")
                  if isinstance(e, dict) else f"  only in {side}: {e}" for e in d[key]]
    return lines


def render(report: dict, *, all_rounds: bool = False, max_rounds: int = 40) -> str:
    """The report as text: the verdict table (every round when there are
    few, else the differing ones unless ``all_rounds``), then memories,
    reflections, conflicts, LLM usage and the outcome."""
    a, b = report["a"], report["b"]
    v = report["verdicts"]
    out = [f"simulation {report['sim']}: {a} (reference) vs {b}", "",
           f"verdicts: {v['a']:,} rounds in {a}, {v['b']:,} in {b}; {len(v['rounds_differing']):,} differ (marked *)"]
    rows = v["rounds"]
    shown = rows if all_rounds or len(rows) <= max_rounds else [r for r in rows if r["differs"]]
    head = f"{'ratio':>7} {'posts':>6} {'authors':>7} {'+':>5}/{'-':<5} {'flips':>5}"
    out.append(f"  {'round':>6} | {a[:CELL]:^{CELL}} | {b[:CELL]:^{CELL}}")
    out.append(f"  {'':>6} | {head} | {head}")
    for r in shown:
        out.append(f"{'*' if r['differs'] else ' '} {r['round']:6d} | {_verdict_cell(r['a'])} | {_verdict_cell(r['b'])}")
    if len(shown) < len(rows):
        out.append(f"  ({len(rows) - len(shown):,} equal rounds not shown; --all-rounds shows them)")
    out.append("")
    out += _keyed_lines("memories", report["memories"], a, b)
    out += _keyed_lines("reflections", report["reflections"], a, b)
    out += _keyed_lines("conflicts", report["conflicts"], a, b)
    out += ["", f"LLM calls of {a}: {_usage(report['llm']['a'])}", f"LLM calls of {b}: {_usage(report['llm']['b'])}", ""]
    if report["equal"]:
        out.append("result: equal (every verdict, memory, reflection and conflict)")
    else:
        parts = [p for p, eq in report["parts_equal"].items() if not eq]
        out.append(f"result: different ({', '.join(parts)})")
    return "\n".join(out)
