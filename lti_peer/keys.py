"""The platform's RSA keys, made with `cryptography`, and their public JWKs as Moodle's certs.php lists them.

2048-bit RSA generation takes ~0.1-1 s, so the tests take their keys from a pool made once per process
(`pool_key`) and reused; the benchmark and the demo make keys of their own (`generate_key`).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_SIZE = 2048

_KEY_POOL: list[rsa.RSAPrivateKey] = []
_KEY_LOCK = threading.Lock()
_ATTACKER_KEY: list[rsa.RSAPrivateKey] = []


def generate_key() -> rsa.RSAPrivateKey:
    """A new 2048-bit RSA key, as a Moodle site makes its own."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def pool_key(index: int) -> rsa.RSAPrivateKey:
    """The ``index``-th key of the process-wide pool (generated on first use, then cached)."""
    with _KEY_LOCK:
        while len(_KEY_POOL) <= index:
            _KEY_POOL.append(generate_key())
        return _KEY_POOL[index]


def attacker_key() -> rsa.RSAPrivateKey:
    """A key no platform ever publishes: for tokens signed by somebody else."""
    with _KEY_LOCK:
        if not _ATTACKER_KEY:
            _ATTACKER_KEY.append(generate_key())
        return _ATTACKER_KEY[0]


def new_kid() -> str:
    """A key id shaped like Moodle's (20 hexadecimal digits)."""
    return secrets.token_hex(10)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public JWK as Moodle's certs.php lists it (kty, alg, kid, e, n, use)."""
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {"kty": "RSA", "alg": "RS256", "kid": kid, "e": jwk["e"], "n": jwk["n"], "use": "sig"}


@dataclass(frozen=True)
class PlatformKey:
    """One platform signing key: its kid, the private key, and the public JWK the platform publishes."""

    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> PlatformKey:
        """A fresh key under a fresh Moodle-shaped kid."""
        return cls(new_kid(), generate_key())

    @property
    def jwk(self) -> dict[str, Any]:
        """The public JWK, as certs.php lists it."""
        return public_jwk(self.private, self.kid)

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The same JWK, under the name the launch benchmark reads."""
        return self.jwk

    @property
    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The key set publishing this key alone."""
        return {"keys": [self.jwk]}

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.private).encode("ascii")


def load_or_create_key(path: Path) -> PlatformKey:
    """The key kept at ``path`` as a private JWK (made there, readable by its owner only, on first use)."""
    if path.exists():
        jwk = json.loads(path.read_text())
        private = RSAAlgorithm.from_jwk(jwk)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError(f"{path} holds no private RSA key")
        return PlatformKey(str(jwk["kid"]), private)
    key = PlatformKey.generate()
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.private)), "kid": key.kid, "alg": "RS256", "use": "sig"}
    path.write_text(json.dumps(jwk))
    path.chmod(0o600)
    return key


__all__ = [
    "KEY_SIZE",
    "PlatformKey",
    "attacker_key",
    "generate_key",
    "load_or_create_key",
    "new_kid",
    "pool_key",
    "private_pem",
    "public_jwk",
    "public_pem",
]
