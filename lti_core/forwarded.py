"""The scheme and host the browser used, when reverse proxies stand between it and the tool.

LTI 1.1 signs the exact launch URL and LTI 1.3 names the tool in target_link_uri: both are checked against
the public URL, which a TLS-terminating proxy hides from the tool and reports in X-Forwarded-Proto,
X-Forwarded-Host and X-Forwarded-For. Anyone can send those headers, so they are believed only from a
direct peer the administrator listed as a trusted proxy (an empty list believes nobody).

    trusted = trusted_networks(["10.0.0.0/8", "127.0.0.1"])
    origin = public_origin(ReceivedRequest("http", "10.0.0.7:8000", "10.0.0.2", "203.0.113.9", "https",
                                           "tool.example"), trusted)
    origin.scheme, origin.host  # ("https", "tool.example")
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import NamedTuple

Network = IPv4Network | IPv6Network
TrustedProxies = tuple[Network, ...]

_SCHEMES = ("http", "https")
# RFC 1123 host names: letters, digits and inner hyphens in dot-separated labels of at most 63 characters.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"(?P<name>{_LABEL}(?:\.{_LABEL})*|\[(?P<ipv6>[0-9a-f:.]+)\])(?::(?P<port>[0-9]{{1,5}}))?")


@dataclass(frozen=True)
class ReceivedRequest:
    """What the server knows of one request: its own connection, and what proxies said about theirs.

    ``scheme`` and ``host`` are the connection's (the server's own scheme, the Host header); ``peer`` is the
    address of whoever opened the connection (REMOTE_ADDR). The ``forwarded_*`` fields are the raw
    X-Forwarded-For, -Proto and -Host headers ("" when absent), comma lists as proxies append to them.
    """

    scheme: str
    host: str
    peer: str
    forwarded_for: str = ""
    forwarded_proto: str = ""
    forwarded_host: str = ""


class PublicOrigin(NamedTuple):
    scheme: str
    host: str
    #: The nearest address that is not a trusted proxy: the browser's, as far as trusted proxies tell (for logs).
    client: str


def trusted_networks(entries: Iterable[str]) -> TrustedProxies:
    """The administrator's list of trusted proxies (IP addresses or CIDR networks), parsed.

    Raises ValueError naming the first entry that is neither.
    """
    return _parse(tuple(entries))


@lru_cache(maxsize=16)
def _parse(entries: tuple[str, ...]) -> TrustedProxies:
    networks = []
    for entry in entries:
        try:
            networks.append(ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(networks)


def _address(value: str) -> IPv4Address | IPv6Address | None:
    """An IP address from a header or REMOTE_ADDR: brackets and a port are allowed (``[::1]:443``,
    ``10.0.0.1:80``), IPv4-mapped IPv6 is read as IPv4 (a dual-stack proxy reports ``::ffff:10.0.0.1``)."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":")[0]
    try:
        address = ip_address(value)
    except ValueError:
        return None  # "unknown", an obfuscated name (RFC 7239), garbage: never a trusted proxy
    mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    return mapped or address


def is_trusted(peer: str, trusted: TrustedProxies) -> bool:
    address = _address(peer)
    return address is not None and any(address in network for network in trusted)


def valid_host(value: str) -> bool:
    """A host name, an IPv4 address or a bracketed IPv6 address, with an optional port: nothing else."""
    match = _HOST.fullmatch(value.lower())
    if match is None or len(match["name"]) > 255:
        return False
    if match["port"] is not None and not 0 < int(match["port"]) < 65536:
        return False
    if match["ipv6"] is not None:
        return _address(match["ipv6"]) is not None and ":" in match["ipv6"]
    labels = match["name"].split(".")
    # All digits is no host name (no top-level domain is numeric): then it must be an IPv4 address.
    return not all(label.isdigit() for label in labels) or _address(match["name"]) is not None


def _items(header: str) -> list[str]:
    return [item.strip() for item in header.split(",") if item.strip()]


def _last(header: str) -> str:
    """The entry the nearest proxy wrote: proxies append to these lists, so the first one is the client's."""
    items = _items(header)
    return items[-1] if items else ""


def _client(request: ReceivedRequest, trusted: TrustedProxies) -> str:
    """Walk X-Forwarded-For from the right while the hops are trusted proxies: the first other one is the client."""
    client = request.peer
    for hop in reversed(_items(request.forwarded_for)):
        client = hop
        if not is_trusted(hop, trusted):
            break
    return client


def public_origin(request: ReceivedRequest, trusted: TrustedProxies) -> PublicOrigin:
    """The (scheme, host) the browser used: the connection's own, unless the direct peer is a trusted proxy;
    then the values that proxy set (the last entry of X-Forwarded-Proto and -Host), each only if valid."""
    own = PublicOrigin(request.scheme.lower(), request.host, request.peer)
    if not is_trusted(request.peer, trusted):
        return own
    proto, host = _last(request.forwarded_proto).lower(), _last(request.forwarded_host).lower()
    return PublicOrigin(
        proto if proto in _SCHEMES else own.scheme,
        host if valid_host(host) else own.host,
        _client(request, trusted),
    )


def as_received_by_appending_proxy(request: ReceivedRequest, trusted: TrustedProxies) -> ReceivedRequest:
    """The request as the trusted proxy that is the direct peer received it, when that proxy appends itself to
    X-Forwarded-For and -Proto and keeps the Host header, as configurable-http-proxy (JupyterHub's) does.

    Its last X-Forwarded-For entry becomes the peer and its last X-Forwarded-Proto entry the scheme.
    X-Forwarded-Host is left as it is: such a proxy sets it only when absent, so it may still be the client's,
    and ``public_origin`` then believes it only if the new peer is a trusted proxy too. A request from an
    untrusted peer is returned unchanged.
    """
    if not is_trusted(request.peer, trusted):
        return request
    hops, protos = _items(request.forwarded_for), _items(request.forwarded_proto)
    proto = protos[-1].lower() if protos else ""
    return replace(
        request,
        # No X-Forwarded-For: whoever talked to the proxy is unknown, and unknown is never trusted.
        peer=hops[-1] if hops else "",
        forwarded_for=", ".join(hops[:-1]),
        scheme=proto if proto in _SCHEMES else request.scheme,
        forwarded_proto=", ".join(protos[:-1]),
    )
