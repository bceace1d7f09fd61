"""The circuit breaker's decisions, on a given clock."""

from streams.llm.breaker import Breaker


def test_opens_after_a_streak_of_outage_failures_and_probes_after_the_cooldown():
    b = Breaker(failures=3, cooldown_s=5, max_cooldown_s=60, quiet_s=0)
    assert [b.record(0, ok=False, reason="connection") for _ in range(3)] == [False, False, True]
    assert b.state == "open" and not b.allows(4.9)
    assert b.allows(5.0) and b.state == "half_open"
    assert not b.allows(5.1)  # one probe at a time
    assert b.record(5.2, ok=False, reason="timeout")  # the probe failed: open again, for longer
    assert not b.allows(14.9) and b.allows(15.2)
    b.record(15.3, ok=True)
    assert b.state == "closed" and b.allows(15.4)


def test_a_success_resets_the_streak_and_answers_that_are_not_outages_do_not_count():
    b = Breaker(failures=2, quiet_s=0)
    b.record(0, ok=False, reason="http_5xx")
    b.record(1, ok=True)
    assert not b.record(2, ok=False, reason="http_5xx") and b.state == "closed"
    for _ in range(10):
        b.record(3, ok=False, reason="invalid_schema")  # the server is up; the answer was bad
        b.record(3, ok=False, reason="http_4xx")
    assert b.state == "closed"


def test_the_cooldown_grows_to_its_cap():
    b = Breaker(failures=1, cooldown_s=10, max_cooldown_s=25, quiet_s=0)
    now, cooldowns = 0.0, []
    b.record(now, ok=False, reason="connection")
    for _ in range(4):
        opened = now
        while not b.allows(now):
            now += 1
        cooldowns.append(now - opened)
        b.record(now, ok=False, reason="connection")
    assert cooldowns == [10, 20, 25, 25]


def test_a_probe_answered_by_the_server_closes_even_if_the_answer_was_bad():
    b = Breaker(failures=1, cooldown_s=1, quiet_s=0)
    b.record(0, ok=False, reason="connection")
    assert b.allows(1)
    b.record(1, ok=False, reason="invalid_json")
    assert b.state == "closed"


def test_a_server_that_still_answers_some_requests_is_not_cut_off():
    b = Breaker(failures=3, quiet_s=2)
    b.record(0, ok=True)
    for t in (0.1, 0.2, 0.3, 0.4, 0.5):  # failures come back before the next success
        b.record(t, ok=False, reason="http_5xx")
    assert b.state == "closed"
    b.record(2.1, ok=False, reason="http_5xx")  # and then nothing but failures for the quiet time
    assert b.state == "open"


def test_a_server_down_from_the_start_is_cut_off_once_the_quiet_time_passed():
    b = Breaker(failures=3, quiet_s=2)
    for t in (0.0, 0.1, 0.2, 0.3):
        b.record(t, ok=False, reason="connection")
    assert b.state == "closed"
    assert b.record(2.0, ok=False, reason="connection") and b.state == "open"
