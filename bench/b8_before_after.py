"""B8: worker CPU per post and B2's drained rate, before and after a change,
measured in the same run.

"Before" is a revision of this repository, by default the one before the
agent log (the parent of the commit that added processors/agent.py),
checked out as a git worktree in the temp dir; "after" is this checkout.
Each side runs its own code end to end: its publisher (its topics), one
``murmur worker --processors all`` of its own (deterministic LLM), the same
synthetic population (B2's: 1,000 agents x 20 rounds; quick: 200), on the
same Kafka and Cassandra. Figures, per side:

* worker CPU per post: user + system CPU time of the worker process from the
  moment it joined its group until its group drained, over the posts (all
  events, observations and personas included, are the work; posts are the
  unit B2 reports);
* drained posts/s: posts over the time from the first publish to the
  drained group.

Ratios are after / before. Each side's measurement runs in a child process
whose ``sys.path`` is that side's checkout (``bench/b8_child.py``), so the
two never share code. The worktree is left in the temp dir for the next
run (``git worktree prune`` removes it once deleted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, BenchError, Ctx, figure

NAME = "B8"
TITLE = "worker CPU per post and drained posts/s, before vs after the agent log (same run)"
CHILD = Path(__file__).resolve().parent / "b8_child.py"
MARK = "processors/agent.py"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def before_revision() -> str:
    """``MURMUR_BENCH_BEFORE`` or the parent of the commit that added the mark."""
    rev = os.environ.get("MURMUR_BENCH_BEFORE") or ""
    if not rev:
        added = git("log", "--diff-filter=A", "--format=%H", "--", MARK).splitlines()
        if not added:
            raise BenchError(f"no commit adds {MARK}: set MURMUR_BENCH_BEFORE to a revision")
        rev = f"{added[-1]}^"
    return git("rev-parse", "--verify", f"{rev}^{{commit}}")


def worktree(ctx: Ctx, sha: str) -> Path:
    # Outside the checkout: a second copy of the code inside it would be read
    # by the tests that scan the tree.
    path = Path(tempfile.gettempdir()) / "murmur-bench-worktrees" / sha[:12]
    if not (path / "streams").is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "prune")
        git("worktree", "add", "--detach", "--force", str(path), sha)
    return path


def measure(ctx: Ctx, checkout: Path, agents: int, rounds: int) -> dict:
    # One state dir for both sides (the services' and this run's).
    env = {**os.environ, "PYTHONPATH": str(checkout), "MURMUR_LLM__BACKEND": "deterministic",
           "MURMUR_STATE_DIR": str(ctx.settings.state_dir.resolve())}
    proc = subprocess.run([sys.executable, str(CHILD), "--agents", str(agents), "--rounds", str(rounds)],
                          cwd=checkout, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise BenchError(f"measurement in {checkout} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(ctx: Ctx) -> dict:
    agents, rounds = (200, 20) if ctx.quick else (1_000, 20)
    sha = before_revision()
    sides = {"before": worktree(ctx, sha), "after": ROOT}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(ctx.repeats):
        for side, checkout in sides.items():  # alternated: drift on the box hits both
            r = measure(ctx, checkout, agents, rounds)
            runs[side].append(r)
            ctx.log(f"  B8 {side}: {r['posts']} posts, worker CPU {r['cpu_ms_per_post']:.2f} ms/post, "
                    f"{r['drained_posts_per_s']:.0f} posts/s drained")
    med = {s: sorted(x["cpu_ms_per_post"] for x in rs)[len(rs) // 2] for s, rs in runs.items()}
    rate = {s: sorted(x["drained_posts_per_s"] for x in rs)[len(rs) // 2] for s, rs in runs.items()}
    ref = f"before: revision {sha[:12]}, same run"
    figures = {
        "before_cpu_ms_per_post": figure([x["cpu_ms_per_post"] for x in runs["before"]], unit="ms", digits=3),
        "after_cpu_ms_per_post": figure([x["cpu_ms_per_post"] for x in runs["after"]], unit="ms", digits=3,
                                        reference=ref, reference_value=med["before"]),
        "before_drained_posts_per_s": figure([x["drained_posts_per_s"] for x in runs["before"]], unit="posts/s"),
        "after_drained_posts_per_s": figure([x["drained_posts_per_s"] for x in runs["after"]], unit="posts/s",
                                            reference=ref, reference_value=rate["before"]),
    }
    return {"title": TITLE, "settings": {"agents": agents, "rounds": rounds, "before": sha, "workers": 1,
                                         "processors": "all", "llm": "deterministic", "repeats": ctx.repeats},
            "figures": figures, "runs": runs}
