"""id_tokens as a platform signs them (pyjwt, RS256), and the forged ones an attacker builds by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from lti_peer.keys import public_pem


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def sign(
    payload: Mapping[str, Any],
    key: rsa.RSAPrivateKey,
    *,
    kid: str | None,
    alg: str = "RS256",
    secret: str | bytes | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """``payload`` signed with ``key`` by pyjwt, the header carrying ``kid`` (None: no kid) and ``headers``.

    Forgeries: ``alg="none"`` makes an unsigned token; ``alg="HS256"`` (or HS384, HS512) signs with
    ``secret``, by default the PEM of ``key``'s public half (the classic key-confusion attack).
    """
    header: dict[str, Any] = {"typ": "JWT", "alg": alg}
    if kid is not None:
        header["kid"] = kid
    header.update(headers or {})
    if alg.lower() == "none":
        return f"{_b64url_json(header)}.{_b64url_json(payload)}."
    if alg.upper().startswith("HS"):
        if secret is None:
            secret = public_pem(key)
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg.upper()]
        signing_input = f"{_b64url_json(header)}.{_b64url_json(payload)}"
        mac = hmac.new(raw, signing_input.encode("ascii"), digest).digest()
        return f"{signing_input}.{b64url(mac)}"
    extra = {k: v for k, v in header.items() if k != "alg"}
    return jwt.encode(dict(payload), key, algorithm=alg, headers=extra)


__all__ = ["b64url", "sign"]
