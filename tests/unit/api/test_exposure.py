"""The API refuses to answer beyond loopback without a key (api/exposure.py)."""

import pytest

from api.exposure import is_loopback, refusal


@pytest.mark.parametrize("host, loop", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                        ("localhost", True), ("0.0.0.0", False), ("::", False),
                                        ("10.0.0.5", False), ("api.example.org", False)])
def test_loopback(host, loop):
    assert is_loopback(host) is loop


def test_open_beyond_loopback_needs_a_key_or_a_deliberate_choice():
    assert refusal("127.0.0.1", None, key_required=False, allow_anonymous=False) is None
    why = refusal("0.0.0.0", None, key_required=False, allow_anonymous=False)
    assert "0.0.0.0" in why and "MURMUR_API_KEY_SHA256" in why
    assert refusal("0.0.0.0", None, key_required=True, allow_anonymous=False) is None
    assert refusal("0.0.0.0", None, key_required=False, allow_anonymous=True) is None


def test_the_published_host_decides_behind_a_port_mapping():
    # In a container the API listens on 0.0.0.0; the mapping publishes on loopback.
    assert refusal("0.0.0.0", "127.0.0.1", key_required=False, allow_anonymous=False) is None
    assert "192.168.1.4" in refusal("0.0.0.0", "192.168.1.4", key_required=False, allow_anonymous=False)
