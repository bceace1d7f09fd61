"""The floor plan holds: no import circles, no import that runs upward.

Floors, bottom up (every import is read, including those inside functions):

* platform: ``streams`` (settings, topics, topology, serde, Kafka, the Faust
  app and consumer, the batch loop, dead letters, the stall guard, metrics,
  checkpoints, the LLM client in ``streams/llm``) and ``schemas``; it
  imports nothing above it;
* rooms that use only the platform, and not each other: ``connectors``
  (sources), ``sinks`` (views), ``processors`` (the stages);
* ``api``: reads the views (``sinks``), never processor or connector code;
* ``eval``: replay and eval, on top of the rooms;
* ``deploy``: local services and the demo;
* the top floor: the ``murmur`` CLI (``streams/cli.py`` and its command
  groups, ``streams/cli_<group>.py``) and ``bench``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from tests.paths import ROOT

PACKAGES = ("streams", "schemas", "connectors", "sinks", "processors", "api", "eval", "deploy", "bench")
TOP = "top"
FLOOR = {"platform": 0, "connectors": 1, "sinks": 1, "processors": 1, "api": 2, "eval": 3, "deploy": 4, TOP: 5}
# What a room may import on its own floor or above, and what it may not import below it.
ALLOWED = {"api": {"sinks"}}
FORBIDDEN = {"api": {"processors", "connectors"}}


def room(module: str) -> str:
    # The CLI's command groups (streams/cli_<group>.py) are the CLI: they
    # reach every floor, inside their commands, as streams/cli.py does.
    if module == "streams.cli" or module.startswith(("streams.cli_", "bench")):
        return TOP
    top = module.split(".")[0]
    return "platform" if top in ("streams", "schemas") else top


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for m, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the module's package (an __init__ is its own package)
                    parts = m.split(".") if path.name == "__init__.py" else m.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1] + ([node.module] if node.module else [])
                    mod = ".".join(parts)
                else:
                    mod = node.module or ""
                # "from pkg import sub" depends on the submodule; "from mod import name" on the module
                subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in files]
                names = subs if len(subs) == len(node.names) else [mod] + subs
            for name in names:
                if name in files and name != m:
                    edges[m].add(name)
    return edges


def violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, deps in sorted(edges.items()):
        for d in sorted(deps):
            rm, rd = room(m), room(d)
            if rm == rd or rd in ALLOWED.get(rm, ()):
                continue
            if FLOOR[rd] >= FLOOR[rm] or rd in FORBIDDEN.get(rm, ()):
                bad.append(f"{m} ({rm}) -> {d} ({rd})")
    return bad


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_runs_upward_or_sideways():
    bad = violations(graph())
    assert bad == [], "imports against the floor plan:\n" + "\n".join(bad)


def test_no_import_circles():
    assert circles(graph()) == []


def test_the_checker_catches_what_it_is_for():
    edges = graph()
    assert "streams.runtime" in edges and "processors.stance" in edges
    assert "streams.stall_guard" in edges["processors.worker"]  # imports inside functions count too
    assert violations({"streams.metrics": {"streams.checkpoints", "processors.worker"}}) == [
        "streams.metrics (platform) -> processors.worker (processors)"]
    assert violations({"api.app": {"sinks.cassandra_store", "processors.stance"}}) == [
        "api.app (api) -> processors.stance (processors)"]
    assert violations({"sinks.cassandra_writer": {"connectors.publisher"}})  # sideways between rooms
    assert violations({"bench.run": {"eval.runner"}, "streams.cli": {"deploy.local"}}) == []
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def misplaced_unit_tests(unit: Path, root: Path) -> list[str]:
    """Unit tests mirror the packages: ``tests/unit/<package>/[<sub>/]test_*.py``
    for a package (or subpackage) that exists; only whole-tree checks like this
    one sit at the top."""
    bad = []
    for path in sorted(unit.rglob("test_*.py")):
        rel = path.relative_to(unit)
        if len(rel.parts) == 1:
            if rel.name != Path(__file__).name:
                bad.append(f"{rel}: not in a package's folder")
        elif not (root / rel.parent / "__init__.py").is_file() and not (root / rel.parent).is_dir():
            bad.append(f"{rel}: tests/unit/{rel.parent} mirrors no package")
    return bad


def test_unit_tests_mirror_the_packages():
    assert misplaced_unit_tests(ROOT / "tests" / "unit", ROOT) == []


def test_the_mirror_check_catches_a_stray(tmp_path):
    unit = tmp_path / "tests" / "unit"
    (unit / "streams").mkdir(parents=True)
    (unit / "nowhere").mkdir()
    (tmp_path / "streams").mkdir()
    for rel in ("streams/test_ok.py", "nowhere/test_lost.py", "test_loose.py"):
        (unit / rel).write_text("")
    assert misplaced_unit_tests(unit, tmp_path) == ["nowhere/test_lost.py: tests/unit/nowhere mirrors no package",
                                                    "test_loose.py: not in a package's folder"]
