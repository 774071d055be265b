"""Which scheme and host the browser used: X-Forwarded-* believed from trusted proxies only (lti_core.forwarded)."""

from __future__ import annotations

import pytest

from lti_core.forwarded import (
    ReceivedRequest,
    as_received_by_appending_proxy,
    is_trusted,
    public_origin,
    trusted_networks,
    valid_host,
)

PROXY = "10.0.0.2"
TRUSTED = trusted_networks(["10.0.0.0/24", "192.0.2.7", "2001:db8::/32"])


def received(peer: str = PROXY, **forwarded: str) -> ReceivedRequest:
    """A request to the tool's server on 10.0.0.5:8000, over http, as a proxy in front of it sends it."""
    return ReceivedRequest("http", "10.0.0.5:8000", peer, **forwarded)


def origin(request: ReceivedRequest, trusted=TRUSTED) -> tuple[str, str]:
    found = public_origin(request, trusted)
    return found.scheme, found.host


def test_a_trusted_proxy_gives_the_public_scheme_and_host():
    request = received(forwarded_for="203.0.113.9", forwarded_proto="https", forwarded_host="tool.example")
    assert public_origin(request, TRUSTED) == ("https", "tool.example", "203.0.113.9")


def test_nothing_is_trusted_by_default():
    request = received(forwarded_proto="https", forwarded_host="tool.example")
    assert origin(request, trusted_networks([])) == ("http", "10.0.0.5:8000")


@pytest.mark.parametrize(
    "peer",
    [
        "203.0.113.9",  # a client on the internet
        "10.0.1.2",  # next to the trusted network, not in it
        "",  # unknown (a Unix socket)
        "unknown",
        "2001:db9::1",
    ],
)
def test_headers_from_a_peer_not_listed_are_ignored(peer):
    request = received(peer, forwarded_for="10.0.0.2", forwarded_proto="https", forwarded_host="evil.example")
    assert public_origin(request, TRUSTED) == ("http", "10.0.0.5:8000", peer)


@pytest.mark.parametrize("peer", ["10.0.0.2", "192.0.2.7", "::ffff:10.0.0.2", "2001:db8::1", "[2001:db8::1]:443"])
def test_listed_peers_addresses_and_networks(peer):
    assert is_trusted(peer, TRUSTED)
    assert origin(received(peer, forwarded_host="tool.example")) == ("http", "tool.example")


def test_the_nearest_proxys_value_counts_not_the_clients():
    """Proxies append: the first entries are whatever the client sent, the last one is the trusted proxy's."""
    request = received(
        forwarded_for="198.51.100.1, 203.0.113.9",
        forwarded_proto="http, https",
        forwarded_host="evil.example, tool.example",
    )
    assert public_origin(request, TRUSTED) == ("https", "tool.example", "203.0.113.9")


def test_several_trusted_hops_are_walked_from_the_right():
    request = received(forwarded_for="198.51.100.1, 203.0.113.9, 192.0.2.7, 10.0.0.3", forwarded_host="tool.example")
    assert public_origin(request, TRUSTED).client == "203.0.113.9"


def test_a_chain_of_trusted_proxies_only_is_walked_to_its_end():
    request = received(forwarded_for="10.0.0.9, 192.0.2.7", forwarded_proto="https")
    assert public_origin(request, TRUSTED).client == "10.0.0.9"


def test_forwarded_headers_without_x_forwarded_for_still_come_from_the_trusted_peer():
    assert public_origin(received(forwarded_proto="https"), TRUSTED) == ("https", "10.0.0.5:8000", PROXY)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example/path",
        "evil.example?x",
        "user@evil.example",
        "evil.example:99999",
        "evil.example:0",
        "evil.example:",
        "evil example",
        "evil.example\r\nSet-Cookie: a=b",
        "-evil.example",
        "evil_.example",
        "[::1",
        "[1.2.3.4]",
        "999.0.0.1",
        "",
        "é.example",
        "\uff45vil.example",
    ],
)
def test_an_invalid_forwarded_host_falls_back_to_the_connections(host):
    assert not valid_host(host)
    assert origin(received(forwarded_host=host, forwarded_proto="https")) == ("https", "10.0.0.5:8000")


@pytest.mark.parametrize(
    "host", ["tool.example", "Tool.Example:8443", "localhost", "127.0.0.1:8000", "[::1]", "[2001:db8::5]:443"]
)
def test_valid_hosts(host):
    assert valid_host(host)
    assert origin(received(forwarded_host=host)) == ("http", host.lower())


@pytest.mark.parametrize("proto", ["ftp", "javascript", "https ;", "", "HTTPS"])
def test_only_http_and_https_are_schemes(proto):
    scheme, _ = origin(received(forwarded_proto=proto))
    assert scheme == ("https" if proto == "HTTPS" else "http")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "proxy.example", "10.0.0.1/8/1", "any"])
def test_a_bad_trusted_proxy_entry_is_an_error(entry):
    with pytest.raises(ValueError, match="not an IP address or network"):
        trusted_networks(["127.0.0.1", entry])


# -- a proxy that appends itself (configurable-http-proxy, in front of JupyterHub) -------------------------

LOOPBACK = trusted_networks(["127.0.0.1"])


def through_chp(peer: str = "127.0.0.1", **forwarded: str) -> ReceivedRequest:
    """What the hub receives from configurable-http-proxy on loopback: CHP appends the address and scheme of
    whoever talked to it, keeps the Host header, and sets X-Forwarded-Host only if it was absent."""
    return ReceivedRequest("http", "hub.example.org", peer, **forwarded)


def test_appending_proxy_peeled_a_remote_client_cannot_choose_the_host():
    request = through_chp(forwarded_for="203.0.113.9", forwarded_proto="https", forwarded_host="evil.example")
    peeled = as_received_by_appending_proxy(request, LOOPBACK)
    assert (peeled.peer, peeled.scheme, peeled.forwarded_for, peeled.forwarded_proto) == (
        "203.0.113.9",
        "https",
        "",
        "",
    )
    assert public_origin(peeled, LOOPBACK) == ("https", "hub.example.org", "203.0.113.9")


def test_appending_proxy_peeled_the_proxy_in_front_of_it_is_believed_when_listed():
    """nginx on loopback in front of CHP: it set X-Forwarded-Proto and -Host; CHP appended "http"."""
    request = through_chp(
        forwarded_for="198.51.100.1, 203.0.113.9, 127.0.0.1",
        forwarded_proto="https, http",
        forwarded_host="hub.example.org",
    )
    peeled = as_received_by_appending_proxy(request, LOOPBACK)
    assert public_origin(peeled, LOOPBACK) == ("https", "hub.example.org", "203.0.113.9")


def test_appending_proxy_not_listed_is_not_peeled():
    request = through_chp(forwarded_for="203.0.113.9", forwarded_proto="https", forwarded_host="evil.example")
    assert as_received_by_appending_proxy(request, trusted_networks([])) == request
    assert origin(request, trusted_networks([])) == ("http", "hub.example.org")


def test_appending_proxy_without_x_forwarded_for_leaves_an_unknown_peer():
    peeled = as_received_by_appending_proxy(through_chp(forwarded_host="evil.example"), LOOPBACK)
    assert peeled.peer == ""
    assert origin(peeled, LOOPBACK) == ("http", "hub.example.org")
