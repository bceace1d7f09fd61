"""MiroFish's own eval runner, run as another program beside Murmur (B2).

MiroFish's in-process memory layer and eval runner sit in
``../shared/reference/mirofish-runner`` (relative to the repository root;
``MURMUR_MIROFISH_RUNNER`` points elsewhere). It is AGPL code of another
project: it is never imported from or copied into Murmur, only started as a
separate process, with a venv of its own made once under Murmur's cache dir
(``<cache_dir>/mirofish-venv``) from PyPI.

One run: ``python -m backend.eval.runner --deterministic --mock-llm
--num-agents N --num-rounds R --output-json`` in the runner's folder, timed
as a whole process (wall time, as its README measured it), its posts read
from the JSON record it prints (``run.round_posts``). It exits 1 by design
when its case scores below 0.5, so its exit code is not its health: its
record is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, BenchError, Log

ENV_VAR = "MURMUR_MIROFISH_RUNNER"
DEFAULT_DIR = ROOT.parent / "shared" / "reference" / "mirofish-runner"
ENTRY = Path("backend") / "eval" / "runner.py"
# The case its README timed; the workload size (agents x rounds) is what B2 matches.
CASE = "sample_policy_carbon_tax"
SEED = 1234
# What its README asks for, pinned so that two benchmark runs time the same
# libraries; a change here makes a new venv (see ensure_venv).
REQUIREMENTS = ("python-dotenv==1.2.4", "openai==3.63.0", "flask==3.1.3", "flask-cors==6.0.5", "numpy==2.4.6")
# Exit codes that still come with a record: 0 (composite >= 0.5) and 1 (below: its CI guard).
OK_EXITS = (0, 1)


@dataclass(frozen=True)
class MirofishRun:
    agents: int
    rounds: int
    posts: int
    wall_s: float
    reflections: int
    conflicts: int
    exit_code: int

    @property
    def posts_per_s(self) -> float:
        return self.posts / self.wall_s

    def as_dict(self) -> dict:
        return {"agents": self.agents, "rounds": self.rounds, "posts": self.posts, "wall_s": round(self.wall_s, 2),
                "posts_per_s": round(self.posts_per_s, 1), "reflections": self.reflections,
                "conflicts": self.conflicts, "exit_code": self.exit_code}


def configured_dir(env: dict[str, str] | None = None) -> Path:
    """Where the runner is looked for: ``MURMUR_MIROFISH_RUNNER``, else the default."""
    env = os.environ if env is None else env
    return Path(env.get(ENV_VAR) or DEFAULT_DIR).expanduser()


def locate(env: dict[str, str] | None = None) -> Path | None:
    """The runner's folder, or None when it is not there (B2 then skips its figures)."""
    folder = configured_dir(env)
    return folder if (folder / ENTRY).is_file() else None


def _tail(text: str | bytes | None, lines: int = 15) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").strip().splitlines()[-lines:]) or "(nothing)"


def parse_record(stdout: str, *, agents: int, rounds: int) -> tuple[int, int, int]:
    """(posts, reflections, conflicts) from the runner's ``--output-json`` record.

    The record must be for the size asked (a runner that ignored an argument
    would otherwise be timed on another workload)."""
    try:
        record = json.loads(stdout)
    except json.JSONDecodeError as e:
        raise BenchError(f"MiroFish runner: its output is not a JSON record ({e}); "
                         f"it began: {stdout[:200]!r}") from None
    run = record.get("run") if isinstance(record, dict) else None
    if not isinstance(run, dict):
        raise BenchError("MiroFish runner: its JSON record has no 'run' object")
    round_posts = run.get("round_posts")
    if not isinstance(round_posts, list) or not all(isinstance(n, int) and n >= 0 for n in round_posts):
        raise BenchError(f"MiroFish runner: run.round_posts is not a list of post counts: {round_posts!r:.200}")
    if len(round_posts) != rounds:
        raise BenchError(f"MiroFish runner: run.round_posts has {len(round_posts)} rounds, {rounds} were asked")
    config = run.get("config")
    got_agents = config.get("num_agents") if isinstance(config, dict) else None
    if got_agents != agents:
        raise BenchError(f"MiroFish runner: run.config.num_agents is {got_agents!r}, {agents} were asked")
    posts = sum(round_posts)
    if posts == 0:
        raise BenchError("MiroFish runner: its record has no posts")
    counts = []
    for key in ("reflections_written", "conflicts_written"):
        v = run.get(key)
        if not isinstance(v, int):
            raise BenchError(f"MiroFish runner: run.{key} is not a count: {v!r:.100}")
        counts.append(v)
    return posts, counts[0], counts[1]


def command(python: Path, *, agents: int, rounds: int, case: str = CASE, seed: int = SEED) -> list[str]:
    if agents < 1 or rounds < 1:
        raise BenchError(f"MiroFish runner: agents and rounds must be positive (got {agents} x {rounds})")
    return [str(python), "-m", "backend.eval.runner", "--case", case, "--deterministic", "--mock-llm",
            "--num-agents", str(agents), "--num-rounds", str(rounds), "--seed", str(seed), "--output-json"]


def run_once(folder: Path, python: Path, *, agents: int, rounds: int, cache: Path,
             timeout: float = 600.0) -> MirofishRun:
    """One whole-process run, timed from start to exit."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8",
           # Its folder is read-only reference data: bytecode goes to the cache.
           "PYTHONPYCACHEPREFIX": str(cache / "pycache")}
    cmd = command(python, agents=agents, rounds=rounds)
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"MiroFish runner: {agents} x {rounds} did not finish in {timeout:.0f}s; "
                         f"its stderr:\n{_tail(e.stderr)}") from None
    except OSError as e:
        raise BenchError(f"MiroFish runner: could not start {cmd[0]}: {e}") from None
    wall = time.perf_counter() - t0
    if done.returncode not in OK_EXITS:
        raise BenchError(f"MiroFish runner: {agents} x {rounds} exited {done.returncode}; "
                         f"its stderr:\n{_tail(done.stderr)}")
    try:
        posts, reflections, conflicts = parse_record(done.stdout, agents=agents, rounds=rounds)
    except BenchError as e:
        # Exit 1 is also an uncaught exception's: its stderr says which.
        raise BenchError(f"{e}\nits exit code {done.returncode}, its stderr:\n{_tail(done.stderr)}") from None
    return MirofishRun(agents, rounds, posts, wall, reflections, conflicts, done.returncode)


def warm_up(folder: Path, python: Path, *, cache: Path) -> float:
    """One untimed run at 20 agents x 2 rounds (a size that has posts): a
    fresh venv compiles every module it imports into the cache on its first
    run, which the first timed run would otherwise pay. Returns its wall
    time (about the process's start and imports, which every timed run
    still includes)."""
    return run_once(folder, python, agents=20, rounds=2, cache=cache).wall_s


def venv_dir(cache_dir: Path) -> Path:
    """Its venv (and its bytecode) under Murmur's cache dir, outside the repository."""
    return cache_dir / "mirofish-venv"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, log: Log = print, requirements: tuple[str, ...] = REQUIREMENTS,
                base_python: str = sys.executable) -> Path:
    """The runner's venv, made once: reused while it holds ``requirements``
    (a marker file written after a complete install says so)."""
    marker = venv / "murmur-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if venv_python(venv).exists() and marker.is_file() and marker.read_text() == wanted:
        return venv_python(venv)
    log(f"  making MiroFish's venv in {venv} ({', '.join(requirements)})")
    steps = [[base_python, "-m", "venv", "--clear", str(venv)],
             [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *requirements]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BenchError(f"MiroFish venv: {' '.join(step[:4])} failed: {e}") from None
        if done.returncode != 0:
            raise BenchError(f"MiroFish venv: {' '.join(step[:4])} exited {done.returncode}:\n"
                             f"{_tail(done.stderr or done.stdout)}")
    marker.write_text(wanted)
    return venv_python(venv)
