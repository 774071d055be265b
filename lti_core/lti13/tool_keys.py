"""The tool's own signing keys: generated here, kept in the Store, published as a JWKS.

Several keys can be active at once so a rotation never breaks a platform that cached the old
key set: add a new key, wait for platforms' caches to turn over, then retire the old one.
Only public members are ever published; loaded private keys are cached, because loading an RSA
key costs about 35 ms and must never happen per request.
"""

from __future__ import annotations

import threading
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from lti_core.errors import LtiError
from lti_core.i18n import N_
from lti_core.store import ToolKeyStore
from lti_core.types import ToolKey

_PUBLIC_MEMBERS = ("kty", "n", "e")


def generate_tool_key(bits: int = 2048) -> ToolKey:
    """A new RSA key, its kid the RFC 7638 thumbprint (stable, and says nothing about the host)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_jwk = RSAKey.import_key(pem).as_dict(private=False)
    kid = RSAKey.import_key(public_jwk).thumbprint()
    public = {k: public_jwk[k] for k in _PUBLIC_MEMBERS}
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return ToolKey(kid=kid, private_pem=pem, public_jwk=public, active=True)


class ToolKeySet:
    """The tool's key set over a ToolKeyStore, with private keys loaded once per process."""

    def __init__(self, store: ToolKeyStore) -> None:
        self._store = store
        self._loaded: dict[str, RSAKey] = {}
        self._lock = threading.Lock()

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: every active key, public members only."""
        keys = []
        for key in self._store.list_tool_keys():
            if key.active:
                keys.append({k: v for k, v in key.public_jwk.items() if k in (*_PUBLIC_MEMBERS, "kid", "alg", "use")})
        return {"keys": keys}

    def ensure_key(self) -> ToolKey:
        """The newest active key, generating the first one on a fresh install."""
        for key in self._store.list_tool_keys():
            if key.active:
                return key
        key = generate_tool_key()
        self._store.save_tool_key(key)
        return key

    def rotate(self) -> ToolKey:
        """Add a new active key; older keys stay published until ``retire``d."""
        key = generate_tool_key()
        self._store.save_tool_key(key)
        return key

    def retire(self, kid: str) -> None:
        if not any(k.kid == kid and k.active for k in self._store.list_tool_keys()):
            raise LtiError("unknown_tool_key", N_("No active tool key has that kid."))
        self._store.set_tool_key_active(kid, False)
        self._loaded.pop(kid, None)

    def signing_key(self) -> RSAKey:
        """The newest active private key, loaded once per process."""
        key = self.ensure_key()
        with self._lock:
            loaded = self._loaded.get(key.kid)
            if loaded is None:
                loaded = RSAKey.import_key(key.private_pem, {"kid": key.kid, "alg": "RS256", "use": "sig"})
                self._loaded[key.kid] = loaded
        return loaded
