"""`murmur sim delete` and `murmur dead-letters` stop on a refusal or bad
input before any service is asked (the services here point nowhere)."""

import pytest
from typer.testing import CliRunner

from streams.cli import app
from streams.settings import get_settings

runner = CliRunner()
NOWHERE = {"MURMUR_KAFKA_BOOTSTRAP": "127.0.0.1:9", "MURMUR_CASSANDRA_PORT": "9"}


@pytest.fixture(autouse=True)
def fresh_settings():
    """The settings are read once per process: read them again from NOWHERE."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_sim_delete_asks_first_and_no_deletes_nothing():
    res = runner.invoke(app, ["sim", "delete", "unit-no-such-sim"], input="n\n", env=NOWHERE)
    assert res.exit_code == 1 and "Delete simulation 'unit-no-such-sim'" in res.output and "nothing deleted" in res.output
    assert "Kafka" not in res.output  # refused before any broker was asked


def test_sim_delete_needs_an_id():
    res = runner.invoke(app, ["sim", "delete", " ", "--yes"], env=NOWHERE)
    assert res.exit_code == 2 and "give the simulation id" in res.output


def test_sim_delete_with_kafka_away_is_one_clear_error():
    res = runner.invoke(app, ["sim", "delete", "unit-no-such-sim", "--yes"], env=NOWHERE)
    assert res.exit_code == 1 and "error: Kafka at 127.0.0.1:9" in res.output and "Traceback" not in res.output


def test_redrive_since_must_be_a_time():
    res = runner.invoke(app, ["dead-letters", "redrive", "--since", "yesterday"], env=NOWHERE)
    assert res.exit_code == 2 and "--since 'yesterday'" in res.output
