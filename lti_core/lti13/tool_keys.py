"""The tool's own signing keys: generated here, kept in the Store, published as a JWKS.

A rotation never breaks a platform that cached the old key set: ``rotate`` adds a new key, which
signs from then on, and schedules every older key to leave the key set ``overlap`` seconds later
(72 hours by default, long after platforms' caches of the JWKS turned over). Until then the JWKS
publishes both, so a token signed with the old key (by another worker, or just before) still
verifies; ``retire_due`` (run whenever the JWKS is served, and by the admin's command) then
deactivates the keys whose time has come. ``retire`` takes one key out at once, but never the last:
the tool always has a key to sign with.

Only public members are ever published; loaded private keys are cached, because loading an RSA key
costs about 35 ms and must never happen per request.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from lti_core.errors import LtiError
from lti_core.i18n import N_
from lti_core.store import ToolKeyStore
from lti_core.types import ToolKey

_PUBLIC_MEMBERS = ("kty", "n", "e")
_PUBLISHED = (*_PUBLIC_MEMBERS, "kid", "alg", "use")
#: Seconds an older key stays published after a rotation: platforms' JWKS caches turn over meanwhile.
DEFAULT_OVERLAP = 72 * 3600.0


def generate_tool_key(bits: int = 2048, *, now: float | None = None) -> ToolKey:
    """A new RSA key made at ``now`` (default: the clock), its kid the RFC 7638 thumbprint (stable,
    and says nothing about the host)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_jwk = RSAKey.import_key(pem).as_dict(private=False)
    kid = RSAKey.import_key(public_jwk).thumbprint()
    public = {k: public_jwk[k] for k in _PUBLIC_MEMBERS}
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    created = time.time() if now is None else now
    return ToolKey(kid=kid, private_pem=pem, public_jwk=public, active=True, created_at=created)


def is_due(key: ToolKey, now: float) -> bool:
    """The key's planned retirement has come (``retires_at`` set and not later than ``now``)."""
    return 0 < key.retires_at <= now


def is_published(key: ToolKey, now: float) -> bool:
    """Active, and not past its retirement: in the JWKS, and usable for signing."""
    return key.active and not is_due(key, now)


@dataclass(frozen=True)
class ToolKeyInfo:
    """What an admin sees of a key: never its private half."""

    kid: str
    created_at: float
    retires_at: float
    #: "signing" (the newest published key), "published" (also in the JWKS: kept through an
    #: overlap), or "retired".
    state: str


class ToolKeySet:
    """The tool's key set over a ToolKeyStore, with private keys loaded once per process.

    ``clock`` is the default ``now`` of every method that takes one (epoch seconds).
    """

    def __init__(self, store: ToolKeyStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._loaded: dict[str, RSAKey] = {}
        self._lock = threading.Lock()

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _published(self, now: float) -> builtins.list[ToolKey]:
        return [key for key in self._store.list_tool_keys() if is_published(key, now)]

    def jwks(self, now: float | None = None) -> dict[str, Any]:
        """The public JWKS: every published key (newest first), public members only."""
        keys = self._published(self._now(now))
        return {"keys": [{k: v for k, v in key.public_jwk.items() if k in _PUBLISHED} for key in keys]}

    def ensure_key(self, now: float | None = None) -> ToolKey:
        """The signing key: the newest published one, generating the first one on a fresh install."""
        at = self._now(now)
        published = self._published(at)
        if published:
            return published[0]
        key = generate_tool_key(now=at)
        self._store.save_tool_key(key)
        return key

    def rotate(self, now: float | None = None, overlap: float = DEFAULT_OVERLAP) -> ToolKey:
        """Add a new key, which signs from now on; every older published key leaves the key set
        ``overlap`` seconds later (a retirement planned sooner stays)."""
        at = self._now(now)
        older = self._published(at)
        key = generate_tool_key(now=at)
        self._store.save_tool_key(key)
        retires_at = at + max(overlap, 0.0)
        for old in older:
            if old.retires_at == 0 or old.retires_at > retires_at:
                self._store.save_tool_key(replace(old, retires_at=retires_at))
        if overlap <= 0:
            self.retire_due(at)
        return key

    def retire_due(self, now: float | None = None) -> builtins.list[str]:
        """Deactivate the keys whose planned retirement has come; their kids. The newest active key
        is never one of them: the tool keeps a key to sign with."""
        at = self._now(now)
        active = [key for key in self._store.list_tool_keys() if key.active]
        due = [key for key in active if is_due(key, at)]
        if due and len(due) == len(active):
            due = due[1:]  # only due keys are left: the newest of them still signs
        for key in due:
            self._store.set_tool_key_active(key.kid, False)
            self._forget(key.kid)
        return [key.kid for key in due]

    def retire(self, kid: str, now: float | None = None) -> None:
        """Take the published key ``kid`` out of the key set at once (``unknown_tool_key`` if it is
        not published; ``last_tool_key`` if it is the only one: rotate first)."""
        published = self._published(self._now(now))
        if not any(key.kid == kid for key in published):
            raise LtiError("unknown_tool_key", N_("No active tool key has that kid."))
        if len(published) == 1:
            raise LtiError(
                "last_tool_key", N_("This is the tool's only signing key: rotate to a new key before retiring it.")
            )
        self._store.set_tool_key_active(kid, False)
        self._forget(kid)
        signing = next(key for key in published if key.kid != kid)
        if signing.retires_at:  # it signs again: it stays until the next rotation
            self._store.save_tool_key(replace(signing, retires_at=0.0))

    def _forget(self, kid: str) -> None:
        with self._lock:
            self._loaded.pop(kid, None)

    def signing_key(self, now: float | None = None) -> RSAKey:
        """The newest published private key, loaded once per process."""
        key = self.ensure_key(now)
        with self._lock:
            loaded = self._loaded.get(key.kid)
            if loaded is None:
                loaded = RSAKey.import_key(key.private_pem, {"kid": key.kid, "alg": "RS256", "use": "sig"})
                self._loaded[key.kid] = loaded
        return loaded

    def list(self, now: float | None = None) -> builtins.list[ToolKeyInfo]:
        """Every key the store holds, newest first, for admins: kid, times and state, no private key."""
        at = self._now(now)
        keys = self._store.list_tool_keys()
        signing = next((key.kid for key in keys if is_published(key, at)), None)
        return [
            ToolKeyInfo(
                kid=key.kid,
                created_at=key.created_at,
                retires_at=key.retires_at,
                state="signing" if key.kid == signing else "published" if is_published(key, at) else "retired",
            )
            for key in keys
        ]
