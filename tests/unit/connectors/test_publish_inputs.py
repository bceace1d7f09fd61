"""``murmur publish`` without a broker: simulation configs, growing inputs,
summaries and exit codes, the engine client (dry run)."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors import mirofish, mirofish_config
from connectors.client import SimulationPublisher
from connectors.events import BadLine, Counts
from connectors.positions import Position, prefix_digest
from connectors.publish_cli import Options, Plan, run_publish
from connectors.sources import LineSource, TraceSource
from connectors.summary import EXIT_DEAD_LETTERS, EXIT_NOTHING, EXIT_OK, dead_letter_limit, exit_code
from deploy.pipeline import EXAMPLE
from streams.cli import app
from tests.paths import SHARED

REAL = SHARED / "real-runs"


def line(**kw) -> bytes:
    base = {"round": 1, "timestamp": "2026-03-02T08:00:05", "agent_id": 3, "agent_name": "Ana",
            "action_type": "CREATE_POST", "action_args": {"content": "hello", "post_id": 9}}
    base.update(kw)
    return json.dumps(base).encode() + b"\n"


def config(tmp_path: Path, **kw) -> Path:
    cfg = {"simulation_id": "sim_1", "simulation_requirement": "Will the carbon tax pass?",
           "time_config": {"minutes_per_round": 30}, "event_config": {"hot_topics": ["tax"]},
           "agent_configs": [
               {"agent_id": 0, "entity_name": "Daily Ledger", "entity_type": "MediaOutlet", "stance": "supportive"},
               {"agent_id": 1, "entity_name": "Prof. Lin", "entity_type": "Professor", "stance": "opposing"},
               {"agent_id": 2, "entity_type": "Student", "stance": "maybe"},
           ]}
    cfg.update(kw)
    path = tmp_path / "simulation_config.json"
    path.write_text(json.dumps(cfg, ensure_ascii=False))
    return path


# -- simulation_config.json -------------------------------------------------------
def test_config_gives_question_and_agent_traits(tmp_path):
    cfg = mirofish_config.read(config(tmp_path))
    assert cfg.question == "Will the carbon tax pass?" and cfg.question_from == "simulation_config.json:simulation_requirement"
    assert cfg.overrides("0") == {"initial_stance": 0.5, "archetype": "media", "name": "Daily Ledger"}
    assert cfg.overrides("1")["initial_stance"] == -0.5 and cfg.overrides("1")["archetype"] == "expert"
    assert "initial_stance" not in cfg.overrides("2") and any("'maybe'" in u for u in cfg.unreadable)
    assert cfg.used == {"simulation_requirement": 1, "agent_configs[].stance": 2, "agent_configs[].entity_type": 3,
                        "agent_configs[].entity_name": 2}
    assert cfg.unused == ["event_config", "simulation_id", "time_config"]
    assert mirofish_config.read(config(tmp_path), question="Other?").question_from == "--question"


def test_config_that_is_not_json_names_the_file(tmp_path):
    path = tmp_path / "simulation_config.json"
    path.write_text("{oops")
    with pytest.raises(mirofish_config.ConfigError, match=r"simulation_config.json: \[\(file\)\] not JSON"):
        mirofish_config.read(path)


def sim_folder(tmp_path: Path) -> Path:
    sim = tmp_path / "sim_zh"
    shutil.copytree(EXAMPLE, sim)
    config(sim)
    return sim


def test_folder_publishes_config_first_and_personas_carry_configured_stance(tmp_path):
    sim = sim_folder(tmp_path)
    s = run_publish(None, [sim], Options(dry_run=True))
    assert s.question == "Will the carbon tax pass?" and s.counts.published["Simulation"] == 1
    plan = Plan(Options(), {})
    plan.add(sim)
    assert [src.name for src in plan.sources][:3] == ["simulation_config.json", "twitter_profiles.csv",
                                                     "reddit_profiles.json"]
    personas = [i.record for src in plan.sources[1:3] for i in src.poll(complete=True).items]
    by = {p["agent_id"]: p for p in personas}
    # agent 0 of the config is agent 0 on both platforms
    assert by["twitter-0"]["initial_stance"] == 0.5 and by["reddit-0"]["initial_stance"] == 0.5
    assert by["twitter-1"]["initial_stance"] == -0.5 and by["twitter-1"]["archetype"] == "expert"
    assert by["twitter-3"]["initial_stance"] == 0.0  # not configured


# -- growing inputs ----------------------------------------------------------------
def test_line_source_waits_for_a_partial_last_line(tmp_path):
    path = tmp_path / "twitter" / "actions.jsonl"
    path.parent.mkdir()
    path.write_bytes(line(agent_id=1) + line(agent_id=2)[:30])
    parser = mirofish.LineParser(sim_id="s", platform="twitter", label=str(path))
    src = LineSource(path, name="twitter/actions.jsonl", sim_id="s", parser=parser)
    first = src.poll(complete=False)
    assert [i.record["agent_id"] for i in first.items] == ["twitter-1"] and src.partial
    with path.open("ab") as fh:
        fh.write(line(agent_id=2)[30:] + line(agent_id=3)[:-1])  # the last line without its newline
    second = src.poll(complete=False)
    assert [i.record["agent_id"] for i in second.items] == ["twitter-2"] and src.partial
    assert src.poll(complete=True).items[0].record["agent_id"] == "twitter-3" and not src.partial
    assert not any(isinstance(i, BadLine) for i in first.items + second.items)


def test_line_source_resumes_after_a_stored_position_without_resending(tmp_path):
    path = tmp_path / "twitter" / "actions.jsonl"
    path.parent.mkdir()
    path.write_bytes(line(agent_id=1, action_args={"content": "a", "post_id": 1}) + line(agent_id=2))
    full = [i.record for i in LineSource(path, name="a", sim_id="s",
                                         parser=mirofish.LineParser(sim_id="s", platform="twitter")).poll(complete=True).items]
    first_len = len(path.read_bytes().split(b"\n")[0]) + 1
    quote = line(agent_id=3, action_type="QUOTE_POST", action_args={"quoted_id": 1, "new_post_id": 4})
    with path.open("ab") as fh:
        fh.write(quote)
    pos = Position("s", "a", "lines", first_len, prefix_digest(path, first_len), 1)
    src = LineSource(path, name="a", sim_id="s", parser=mirofish.LineParser(sim_id="s", platform="twitter"), resume=pos)
    polled = src.poll(complete=True)
    assert polled.resumed == 1
    assert [i.record["event_id"] for i in polled.items][0] == full[1]["event_id"]
    # what the skipped prefix said is still known: the quote names post 1's text
    assert polled.items[-1].record["content"].endswith("> Ana: a")
    replaced = Position("s", "a", "lines", first_len, "0" * 32, 1)
    again = LineSource(path, name="a", sim_id="s", parser=mirofish.LineParser(sim_id="s", platform="twitter"),
                       resume=replaced)
    assert again.poll(complete=True).resumed == 0 and "replaced or truncated" in again.notes[0]


def test_trace_source_reads_new_rows_and_closes_its_round_only_when_complete(tmp_path):
    db = tmp_path / "twitter_simulation.db"
    shutil.copy(REAL / "oasis-empty" / "twitter_simulation.db", db)
    conn = sqlite3.connect(db)

    def add(step: int, user: int, text: str) -> None:
        conn.execute("INSERT INTO trace (user_id, created_at, action, info) VALUES (?, ?, 'create_post', ?)",
                     (user, step, json.dumps({"content": text})))
        conn.commit()

    src = TraceSource(db, name=db.name, sim_id="s", platform=None, round_minutes=60)
    assert src.poll(complete=False).items == []
    add(0, 1, "a")
    add(0, 2, "b")
    kinds = [i.record.get("kind", i.type_name) for i in src.poll(complete=False).items]
    assert kinds == ["round_start", "Post", "Post"]
    add(1, 1, "c")
    kinds = [i.record.get("kind", i.type_name) for i in src.poll(complete=False).items]
    assert kinds == ["round_end", "round_start", "Post"]
    assert src.poll(complete=False).items == []
    assert [i.record["kind"] for i in src.poll(complete=True).items] == ["round_end"]
    assert src.poll(complete=True).items == []  # closed once
    conn.close()


# -- summaries and exit codes ----------------------------------------------------------
def test_exit_codes():
    c = Counts(read=10)
    assert exit_code(c)[0] == EXIT_NOTHING and "all 10 lines read were skipped" in exit_code(c)[1]
    assert exit_code(Counts())[1].endswith("the input holds no lines or rows")
    c.add("Post")
    assert exit_code(c) == (EXIT_OK, "")
    for _ in range(3):
        c.dead("bad")
    assert exit_code(c, "2")[0] == EXIT_DEAD_LETTERS and exit_code(c, "3")[0] == EXIT_OK
    assert exit_code(c, "20%")[0] == EXIT_DEAD_LETTERS and exit_code(c, "30%")[0] == EXIT_OK
    resumed = Counts(read=0, resumed=5)
    assert exit_code(resumed)[0] == EXIT_OK  # a follower restarted after everything was published
    with pytest.raises(ValueError, match="count .* or a percentage"):
        dead_letter_limit("lots", 1)


def test_cli_dry_run_json_summary_and_exit_codes(tmp_path):
    runner = CliRunner()
    sim = sim_folder(tmp_path)
    with (sim / "twitter" / "actions.jsonl").open("ab") as fh:
        fh.write(line(action_type="TELEPORT", action_args={"to": "mars"}))
        fh.write(line(action_type="TELEPORT", action_args={"to": "mars"}))  # an exact duplicate
    res = runner.invoke(app, ["publish", str(sim), "--dry-run", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["dry_run"] and out["sims"] == ["sim_zh"] and out["question"] == "Will the carbon tax pass?"
    assert out["unknown_actions"] == {"TELEPORT": 1} and out["skipped"]["duplicate line"] == 1
    assert out["dead_lettered"] == 3 and out["published"]["Simulation"] == 1
    assert out["read"] == out["published_total"] - out["derived"] + out["skipped_total"] + out["dead_lettered"]
    res = runner.invoke(app, ["publish", str(sim), "--dry-run", "--max-dead-letters", "2"])
    assert res.exit_code == 3 and "more than --max-dead-letters 2" in res.output
    res = runner.invoke(app, ["publish", str(REAL / "oasis-empty" / "twitter_simulation.db"), "--dry-run"])
    assert res.exit_code == 1 and "nothing was published" in res.output and "trace table is empty" in res.output
    notdb = tmp_path / "notes.db"
    conn = sqlite3.connect(notdb)
    conn.execute("CREATE TABLE notes (t TEXT)")
    conn.commit()
    conn.close()
    res = runner.invoke(app, ["publish", str(notdb), "--dry-run"])
    assert res.exit_code == 2 and "not an OASIS database" in res.output
    res = runner.invoke(app, ["publish", str(sim), "--format", "xml"])
    assert res.exit_code == 2 and "--input-format" in res.output


def test_mirofish_folder_uses_its_oasis_databases_to_resolve_ids_not_to_publish(tmp_path):
    sim = tmp_path / "run"
    (sim / "twitter").mkdir(parents=True)
    db = sim / "twitter_simulation.db"
    shutil.copy(REAL / "oasis-empty" / "twitter_simulation.db", db)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO user (user_id, agent_id, name, user_name, bio) VALUES (7, 7, 'Wen', 'wen', '')")
    conn.execute("INSERT INTO post (post_id, user_id, content, created_at) VALUES (41, 7, '碳税会通过', 3)")
    conn.execute("INSERT INTO trace (user_id, created_at, action, info) VALUES (7, 3, 'create_post', '{}')")
    conn.commit()
    conn.close()
    (sim / "twitter" / "actions.jsonl").write_bytes(
        line(action_type="QUOTE_POST", action_args={"quoted_id": 41, "new_post_id": 42}))
    s = run_publish(None, [sim], Options(dry_run=True))
    assert s.counts.published == {"Post": 1} and s.counts.by_action == {"QUOTE_POST": 1}
    assert any("not published" in n and "resolved 1 ids" in n for n in s.notes)


# -- the engine client ------------------------------------------------------------------
def test_client_goes_through_the_same_reader_and_validation():
    errors = []
    with SimulationPublisher("eng", platform="reddit", question="Q?", dry_run=True, on_error=errors.append) as pub:
        assert pub.persona(3, name="Ana", bio="reporter", stance=0.4) is not None
        pub.round_start(1, ts=1000)
        post = pub.post(3, "hello", round=1, post_id=9, ts=1001)
        quote = pub.quote(4, None, quoted=9, round=1, post_id=10, ts=1002)
        assert pub.observation(5, "LIKE_POST", round=1, post_id=9, ts=1003) is not None
        assert pub.post(3, "hello", round=1, post_id=9, ts=1001) is None  # the same call again: one event
        assert pub.action(6, "CREATE_POST", {}, round=1, ts=1004) is None  # no content: dead-lettered
        pub.round_end(1, ts=2000)
    assert post and quote and errors and "CREATE_POST without content" in errors[0]
    c = pub.counts
    assert c.published == {"Simulation": 1, "Persona": 1, "RoundMarker": 2, "Post": 2, "Observation": 1}
    assert c.skipped == {"duplicate line": 1} and c.dead_lettered == 1
    again = SimulationPublisher("eng", platform="reddit", dry_run=True)
    assert again.post(3, "hello", round=1, post_id=9, ts=1001) == post  # deterministic with the engine's clock
