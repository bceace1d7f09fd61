"""Whether the API may start where it was asked to listen.

An API with no key answers anyone who can reach it, which is fine on
loopback and a data leak anywhere else. So an API reachable beyond this
machine starts only with a key required (the operator's hash or issued
keys), or when the operator says in so many words that it should be open.
Behind a port mapping (compose) the process listens on 0.0.0.0 inside its
container either way; what matters is the host the mapping publishes on,
which compose passes in as ``MURMUR_API_PUBLISHED_HOST``.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def refusal(bind_host: str, published_host: str | None, key_required: bool, allow_anonymous: bool) -> str | None:
    """Why the API must not start as configured, or None when it may."""
    reachable_on = published_host or bind_host
    if key_required or allow_anonymous or is_loopback(reachable_on):
        return None
    return (f"the API would answer on {reachable_on} to anyone, with no key: set MURMUR_API_KEY_SHA256 "
            "(`murmur hash-key KEY` prints it) or MURMUR_API_REQUIRE_KEY=true with issued keys, "
            "bind it to 127.0.0.1, or set MURMUR_API_ALLOW_ANONYMOUS=true to run it open on purpose")
