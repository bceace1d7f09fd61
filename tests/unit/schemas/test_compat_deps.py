"""`python -m schemas.compat` runs from the production image: it must need
nothing from the test extra. Checked by running it with every module of the
test extra's distributions made unimportable."""

import importlib.metadata
import re
import subprocess
import sys
import tomllib

from tests.paths import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]


def _top_level_modules(dist_name: str) -> set[str]:
    names = set()
    for path in importlib.metadata.distribution(dist_name).files or ():
        top = path.parts[0]
        if top.endswith((".dist-info", ".data")) or top in ("__pycache__", "..") or top.endswith(".pth"):
            continue
        names.add(top.removesuffix(".py").split(".")[0])
    return names


def test_avro_is_a_main_dependency_not_a_test_one():
    main = {_dist_name(r).lower() for r in PYPROJECT["project"]["dependencies"]}
    test = {_dist_name(r).lower() for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert "avro" in main and "avro" not in test


def test_compat_check_runs_without_the_test_extra():
    forbidden = set()
    for req in PYPROJECT["project"]["optional-dependencies"]["test"]:
        forbidden |= _top_level_modules(_dist_name(req))
    assert {"pytest", "hypothesis", "yaml"} <= forbidden  # the lookup found the real module names
    hook = f"""
import runpy, sys
FORBIDDEN = {sorted(forbidden)!r}
class Forbid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"{{name}} belongs to the test extra")
        return None
sys.meta_path.insert(0, Forbid())
runpy.run_module("schemas.compat", run_name="__main__")
"""
    proc = subprocess.run([sys.executable, "-c", hook], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FULL_TRANSITIVE compatible" in proc.stdout
    # and the hook does bite: the same run importing pytest first fails
    bite = hook.replace('runpy.run_module', 'import pytest\nrunpy.run_module')
    proc = subprocess.run([sys.executable, "-c", bite], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "pytest belongs to the test extra" in proc.stderr
