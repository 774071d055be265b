"""The one fake LTI platform of the project: tests, the benchmarks and the demo all launch from it.

It plays an LTI 1.3 platform shaped like Moodle 4.x (real RSA keys, a real JWKS, the OIDC login and
authorization endpoints, id_tokens) and an LTI 1.1 consumer, and is built with other libraries than
the tool (pyjwt and `cryptography` for tokens and keys, oauthlib's client side for LTI 1.1), so the
tests catch misreadings of the specifications that a tool testing against itself would share.

- `lti_peer.keys`: RSA keys (the session-wide pool, the attacker's key, fresh keys) and their JWKs;
- `lti_peer.claims`: the claims of a Moodle-shaped LTI 1.3 launch and of its login initiation;
- `lti_peer.tokens`: id_tokens signed with pyjwt, and the forged ones an attacker makes by hand;
- `lti_peer.forms`: the auto-submitting form a platform answers with, and a parser for it;
- `lti_peer.platform`: `PlatformPeer`, the platform served over HTTP on loopback;
- `lti_peer.deep_linking`: its deep-linking return (the links and line items a tool's answer makes);
- `lti_peer.lti11`: Moodle-shaped LTI 1.1 launches signed with oauthlib.

It is checkout-only code (like demo/, tests/ and bench/): setup.py keeps it out of the wheel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class _Delete:
    """Sentinel: an override with this value removes the claim or parameter."""

    _instance: _Delete | None = None

    def __new__(cls) -> _Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


class PlatformSite(Protocol):
    """What the gradebook, the outcome service and the token endpoint need of their platform: a
    ``PlatformPeer``, or another host that serves them (the demo's launch page platform, in Django)."""

    @property
    def issuer(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def token_url(self) -> str: ...


def apply_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``overrides``; keys whose override is ``DELETE`` are removed."""
    result = dict(base)
    for key, value in overrides.items():
        if value is DELETE:
            result.pop(key, None)
        else:
            result[key] = value
    return result


__all__ = ["DELETE", "PlatformSite", "apply_overrides"]
