"""Bad command lines end in a clear error and a non-zero exit, no traceback."""

from typer.testing import CliRunner

from streams.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_publish_needs_input():
    res = run("publish")
    assert res.exit_code == 2 and "give files to publish or --synthetic" in res.output


def test_publish_missing_file_is_named(tmp_path):
    res = run("publish", str(tmp_path / "nope.jsonl"))
    assert res.exit_code == 2 and "nope.jsonl: no such file or folder" in res.output


def test_unknown_processor():
    res = run("worker", "--processors", "agent,telepathy")
    assert res.exit_code == 2 and "unknown processor 'telepathy'" in res.output


def test_a_processor_merged_into_the_agent_pass_says_how_to_upgrade():
    for command in ("worker", "lag"):
        res = run(command, "--processors", "importance,cassandra-sink")
        assert res.exit_code == 2 and "now a step of the 'agent' processor" in res.output and "0005" in res.output
        assert "Traceback" not in res.output


def test_eval_case_must_be_a_folder(tmp_path):
    res = run("eval", "run", "--case", str(tmp_path / "missing"))
    assert res.exit_code == 2 and "not a folder" in res.output
    (tmp_path / "case").mkdir()
    res = run("eval", "ablation", "--case", str(tmp_path / "case"))
    assert res.exit_code == 1 and "truth.json: missing" in res.output


def test_replay_journal_mode_is_checked_before_any_broker_is_asked():
    res = run("replay", "--sim", "s1", "--journal", "sometimes")
    assert res.exit_code == 1 and "--journal must be one of off, strict, fill, not 'sometimes'" in res.output


def test_a_chat_template_without_its_parts_stops_the_command_naming_the_setting():
    import os
    import subprocess
    import sys

    env = {**os.environ, "MURMUR_LLM__CHAT_TEMPLATE": "<s>{system}</s>"}
    res = subprocess.run([sys.executable, "-m", "streams.cli", "rescore", "--sim", "s1"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "MURMUR_LLM__CHAT_TEMPLATE" in res.stderr and "no {user}" in res.stderr
    assert "Traceback" not in res.stderr


def test_tail_format_is_checked():
    res = run("tail", "posts", "--format", "xml")
    assert res.exit_code == 2 and "--format must be one of pretty, json, avro-json, raw" in res.output


def test_unknown_service():
    res = run("services", "status", "redis")
    assert res.exit_code == 2 and "unknown service(s) ['redis']" in res.output


def test_qdrant_sink_process_needs_a_server_url(monkeypatch):
    # In local mode the API process runs the sink (docs/adr/0001): a second
    # process would fight it for the folder's lock.
    monkeypatch.delenv("MURMUR_QDRANT_URL", raising=False)
    res = run("sink", "qdrant")
    assert res.exit_code == 2 and "needs MURMUR_QDRANT_URL" in res.output


def test_worker_help_names_every_processor():
    from typer.testing import CliRunner

    from streams.topology import PROCESSORS
    from streams.cli import app

    out = CliRunner().invoke(app, ["worker", "--help"], terminal_width=200).output
    missing = [name for name in PROCESSORS if name not in out]
    assert not missing, missing


def test_a_typo_in_a_fallback_role_stops_the_command_naming_the_setting():
    # Through main(), as the `murmur` script runs it: before any broker is asked.
    import os
    import subprocess
    import sys

    env = {**os.environ, "MURMUR_LLM__FALLBACK": '{"fast": ["fsat"]}'}
    res = subprocess.run([sys.executable, "-m", "streams.cli", "worker", "--processors", "agent"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "MURMUR_LLM__FALLBACK" in res.stderr and "'fsat' is not a role" in res.stderr
    assert "Traceback" not in res.stderr and "Kafka" not in res.stderr


def test_an_unknown_vector_engine_stops_the_command_naming_the_setting():
    import os
    import subprocess
    import sys

    env = {**os.environ, "MURMUR_QDRANT_ENGINE": "faiss"}
    res = subprocess.run([sys.executable, "-m", "streams.cli", "api"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "invalid setting MURMUR_QDRANT_ENGINE" in res.stderr and "'edge'" in res.stderr
    assert "Traceback" not in res.stderr


def test_version():
    from importlib.metadata import version

    res = run("--version")
    assert res.exit_code == 0 and res.output.strip() == f"murmur {version('murmur')}"


def test_tail_offset_and_raw_filters_are_checked_before_any_broker_is_asked():
    res = run("tail", "scored", "-o", "stored")
    assert res.exit_code == 2 and "use beginning, end, N, -N" in res.output
    res = run("tail", "scored", "-o", "-5", "--from-beginning")
    assert res.exit_code == 2 and "not both" in res.output
    res = run("tail", "scored", "--format", "raw", "--sim", "s1")
    assert res.exit_code == 2 and "undecoded" in res.output


def test_a_broker_that_does_not_answer_is_one_line_and_a_non_zero_exit():
    """No traceback and none of librdkafka's per-retry log lines."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MURMUR_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    for command in (["lag"], ["publish", "-", "--sim", "s"]):
        res = subprocess.run([sys.executable, "-m", "streams.cli", *command], env=env, input='{"x": 1}\n',
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: Kafka at 127.0.0.1:1") and "murmur services up" in lines[0]
        assert "Traceback" not in res.stderr and "%3|" not in res.stderr


def test_every_command_and_argument_says_what_it_is_for():
    import click
    import typer.main

    missing = []

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path + [name])
        if getattr(cmd, "commands", None):
            return
        if not (cmd.help or cmd.short_help):
            missing.append(" ".join(path))
        missing.extend(f"{' '.join(path)} {p.name}" for p in cmd.params
                       if isinstance(p, (click.Option, click.Argument)) and not getattr(p, "help", None)
                       and p.name not in ("help",))

    walk(typer.main.get_command(app), [])
    assert missing == []


def test_stdin_is_read_once_so_follow_and_resume_are_refused():
    for flag in ("--follow", "--resume"):
        res = run("publish", "-", flag, "--sim", "s1")
        assert res.exit_code == 2 and "stdin (-) is read once" in res.output


def test_kcat_properties_are_checked_and_an_unknown_one_is_named():
    res = run("tail", "rounds", "-X", "novalue")
    assert res.exit_code == 2 and "write it as property=value" in res.output
    # librdkafka refuses the property when the client is made, before any broker is asked.
    res = run("tail", "rounds", "-X", "no.such.prop=1", "-c", "1")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert 'No such configuration property: "no.such.prop"' in res.output and "-X" in res.output
    assert "is it running" not in res.output


def test_api_refuses_to_listen_beyond_loopback_without_a_key(monkeypatch):
    monkeypatch.delenv("MURMUR_API_KEY_SHA256", raising=False)
    res = run("api", "--host", "0.0.0.0", "--port", "1")
    assert res.exit_code == 2 and "would answer on 0.0.0.0 to anyone" in res.output


def test_shell_completion_offers_commands_options_and_topic_aliases():
    import os
    import subprocess
    import sys
    from pathlib import Path

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_MURMUR_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - 1)}
        # The installed console script: completion is keyed to the program's name.
        murmur = str(Path(sys.executable).parent / "murmur")
        out = subprocess.run([murmur], env=env, capture_output=True, text=True, timeout=60)
        return out.stdout.split()

    assert complete("murmur ta") == ["tail"]
    assert "--format" in complete("murmur tail --fo")
    assert complete("murmur tail re") == ["reflections", "results"]


def test_a_commit_interval_out_of_range_stops_the_worker_naming_the_setting():
    import os
    import subprocess
    import sys

    env = {**os.environ, "MURMUR_FAUST_COMMIT_INTERVAL_S": "0"}
    res = subprocess.run([sys.executable, "-m", "streams.cli", "worker", "--processors", "agent"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "invalid setting MURMUR_FAUST_COMMIT_INTERVAL_S" in res.stderr
    assert "Traceback" not in res.stderr
