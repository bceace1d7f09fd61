"""What ``murmur publish`` reports, and the exit code it ends with.

The summary accounts for every input line or row: published, skipped (with
why), dead-lettered, or published by an earlier run (``resumed``), plus the
events the readers derived (round markers from an OASIS clock). Exit codes:

* 0: something was published (or had been, by an earlier run of a follower);
* 1: nothing was published (an empty database, an input of blank lines, every
  line bad);
* 3: more lines were dead-lettered than ``--max-dead-letters`` allows (a
  count, or a percentage of the lines read: ``5%``).
Usage errors (a path that does not exist, a database that is not OASIS) exit 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.events import Counts

EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_DEAD_LETTERS = 0, 1, 2, 3


@dataclass
class Summary:
    counts: Counts
    sims: list[str] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)  # per source: name, kind, read position
    question: str = ""
    question_source: str = ""
    config_fields_used: dict[str, int] = field(default_factory=dict)
    config_fields_unused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    follow: bool = False
    stopped_by: str = "end of input"  # end of input, simulation_end, idle timeout, signal

    def as_dict(self) -> dict:
        c = self.counts
        return {
            "sims": self.sims,
            "dry_run": self.dry_run,
            "follow": self.follow,
            "stopped_by": self.stopped_by,
            "read": c.read,
            "published": dict(sorted(c.published.items())),
            "published_total": c.total_published,
            "published_by_action": dict(sorted(c.by_action.items())),
            "derived": c.derived,
            "skipped": dict(sorted(c.skipped.items())),
            "skipped_total": c.skipped_total,
            "dead_lettered": c.dead_lettered,
            "dead_letter_reasons": dict(sorted(c.dead_letter_reasons.items())),
            "unknown_actions": dict(sorted(c.unknown_actions.items())),
            "resumed": c.resumed,
            "question": self.question,
            "question_source": self.question_source,
            "config_fields_used": dict(sorted(self.config_fields_used.items())),
            "config_fields_unused": self.config_fields_unused,
            "inputs": self.inputs,
            "notes": self.notes,
        }


def dead_letter_limit(spec: str | None, read: int) -> int | None:
    """``--max-dead-letters``: ``N`` or ``P%`` of the lines read; None: no limit."""
    if spec is None or spec == "":
        return None
    text = spec.strip()
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            if not 0 <= pct <= 100:
                raise ValueError
            return int(read * pct / 100)
        n = int(text)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        raise ValueError(f"--max-dead-letters must be a count (e.g. 10) or a percentage (e.g. 5%), not {spec!r}") from None


def exit_code(counts: Counts, max_dead_letters: str | None = None) -> tuple[int, str]:
    """The exit code and, when it is not 0, why."""
    limit = dead_letter_limit(max_dead_letters, counts.read)
    if limit is not None and counts.dead_lettered > limit:
        return EXIT_DEAD_LETTERS, (f"{counts.dead_lettered} lines dead-lettered, more than --max-dead-letters "
                                   f"{max_dead_letters} allows ({limit} of {counts.read} read)")
    if counts.total_published == 0 and counts.resumed == 0:
        why = "the input holds no lines or rows" if counts.read == 0 else (
            f"all {counts.read} lines read were skipped or dead-lettered")
        return EXIT_NOTHING, f"nothing was published: {why}"
    return EXIT_OK, ""


def render_text(s: Summary) -> str:
    """The summary for a person: one fact per line."""
    d = s.as_dict()
    lines = [f"{'dry run (nothing sent): ' if s.dry_run else ''}simulation {', '.join(s.sims) or '-'}: "
             f"read {d['read']}, published {d['published_total']}, skipped {d['skipped_total']}, "
             f"dead-lettered {d['dead_lettered']}" + (f", already published by an earlier run {d['resumed']}"
                                                        if d["resumed"] else "")]
    if d["published"]:
        lines.append("  published: " + ", ".join(f"{k} {v}" for k, v in d["published"].items())
                     + (f" (of which {d['derived']} derived: round markers from the clock, personas from user tables)"
                        if d["derived"] else ""))
    if d["published_by_action"]:
        lines.append("  by action: " + ", ".join(f"{k} {v}" for k, v in d["published_by_action"].items()))
    for reason, n in d["skipped"].items():
        lines.append(f"  skipped {n}: {reason}")
    for reason, n in d["dead_letter_reasons"].items():
        lines.append(f"  dead-lettered {n}: {reason}")
    if d["unknown_actions"]:
        lines.append("  unknown action types, published as observations: "
                     + ", ".join(f"{k} {v}" for k, v in d["unknown_actions"].items()))
    if s.question:
        lines.append(f"  question ({s.question_source}): {s.question}")
    else:
        lines.append("  question: none (no simulation_config.json and no --question): verdicts carry an empty question")
    if s.config_fields_used:
        lines.append("  config fields used: " + ", ".join(f"{k} ({v})" for k, v in sorted(s.config_fields_used.items())))
    if s.config_fields_unused:
        lines.append("  config fields not used: " + ", ".join(s.config_fields_unused))
    for note in s.notes:
        lines.append(f"  note: {note}")
    if s.follow:
        lines.append(f"  stopped by: {s.stopped_by}")
    return "\n".join(lines)
