import json
import shutil

from schemas import SCHEMA_DIR
from schemas.compat import check


def test_current_schemas_are_full_transitive_compatible():
    assert check() == []
    assert list(SCHEMA_DIR.glob("history/v1/*.avsc"))


def test_checker_catches_breaking_changes(tmp_path):
    shutil.copytree(SCHEMA_DIR / "history", tmp_path / "history")
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path)
    post = json.loads((tmp_path / "Post.avsc").read_text())
    post["fields"].append({"name": "mood", "type": "string", "doc": "no default: old data cannot be read"})
    (tmp_path / "Post.avsc").write_text(json.dumps(post))
    verdict = json.loads((tmp_path / "Verdict.avsc").read_text())
    verdict["fields"] = [f for f in verdict["fields"] if f["name"] != "magnitude"]  # removed without default
    (tmp_path / "Verdict.avsc").write_text(json.dumps(verdict))
    problems = check(tmp_path)
    assert any(p.startswith("Post.avsc vs v1: backward") and "mood" in p for p in problems)
    assert any(p.startswith("Verdict.avsc vs v1: forward") for p in problems)
    # adding a field with a default is fine both ways
    post["fields"][-1]["default"] = ""
    (tmp_path / "Post.avsc").write_text(json.dumps(post))
    assert not any(p.startswith("Post.avsc") for p in check(tmp_path))


def test_every_schema_in_use_has_a_released_version():
    # A schema without history is not checked at all: data written with it
    # could be broken by the next change unnoticed.
    from schemas import SCHEMA_DIR

    released = {p.name for p in SCHEMA_DIR.glob("history/*/*.avsc")}
    assert {p.name for p in SCHEMA_DIR.glob("*.avsc")} <= released
