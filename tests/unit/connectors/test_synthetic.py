from pathlib import Path

import pytest

from connectors import synthetic
from streams.serde import AvroSerde
from tests.paths import SHARED

CASES = SHARED / "mirofish-eval-cases"


@pytest.fixture
def case(tmp_path):
    (tmp_path / "seed.md").write_text("The Greenfield Transit Levy would fund new buses. Supporters praise the growth "
                                      "and benefit; critics warn of cost.")
    (tmp_path / "question.md").write_text("Will public opinion on the transit levy be positive?")
    return tmp_path


def test_same_seed_same_events(case):
    a = synthetic.generate(case, sim_id="s", seed=1, agents=20, rounds=4)
    b = synthetic.generate(case, sim_id="s", seed=1, agents=20, rounds=4)
    c = synthetic.generate(case, sim_id="s", seed=2, agents=20, rounds=4)
    assert [e.record for e in a.events] == [e.record for e in b.events]
    assert [e.record for e in a.events] != [e.record for e in c.events]
    assert a.truth == b.truth


def test_population_and_rounds_are_valid_events(case):
    run = synthetic.generate(case, sim_id="s", seed=3, agents=30, rounds=5)
    serde = AvroSerde()
    by_type = {}
    for e in run.events:
        serde.encode(e.type_name, e.record, check=True)
        by_type[e.type_name] = by_type.get(e.type_name, 0) + 1
    assert by_type["Persona"] == 30
    assert by_type["RoundMarker"] == 10
    assert by_type["Post"] > 30
    assert run.truth["topic"] == "Greenfield Transit Levy"
    assert len({e.record["event_id"] for e in run.events}) == len(run.events)


def test_missing_case_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="seed.md"):
        synthetic.generate(tmp_path, sim_id="s")


def test_reference_cases_generate():
    for case_dir in sorted(p for p in CASES.iterdir() if p.is_dir()):
        run = synthetic.generate(case_dir, sim_id=case_dir.name, seed=42)
        assert run.events and run.truth["rounds"]
