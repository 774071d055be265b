"""Secrets encrypted at rest: the tool's private keys and LTI 1.1 consumer secrets, sealed before a
store writes them and opened when it reads them back.

A ``Sealer`` turns text into text. ``FernetSealer`` seals with the first of its Fernet keys and
opens with any of them (``MultiFernet``), so an admin rotates the encryption key by putting a new
one first and keeping the old ones until every value was saved again. A sealed value is stored as
``"fernet:" + token``; a value without that prefix was written before encryption was turned on and
opens as itself (it is sealed at its next save). A sealed value no configured key opens is refused
with ``store_key_mismatch``: never a traceback, never the value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lti_core.errors import LtiError
from lti_core.i18n import N_

PREFIX = "fernet:"
#: HKDF's ``info`` for keys derived from a host's own secret (Django's SECRET_KEY).
DERIVATION_INFO = b"lti-publish store encryption v1"


class StoreKeyMismatch(LtiError):
    """A sealed value none of the configured encryption keys opens (a changed or missing key): 500."""

    status = 500
    reason = "store_key_mismatch"
    message = N_("The tool's stored keys cannot be read with its configured encryption keys.")


class Sealer(Protocol):
    """Seals text for storage and opens what it sealed."""

    def seal(self, text: str) -> str: ...
    def open(self, text: str) -> str: ...


def fernet_key(material: bytes | str) -> bytes:
    """A Fernet key (url-safe base64 of 32 bytes) from a key given as Fernet/base64 (44 characters),
    hex (64) or 32 raw bytes: the spellings JupyterHub accepts in ``JUPYTERHUB_CRYPT_KEY``.

    ``ValueError`` (which never quotes the key) for anything else.
    """
    raw = material.encode("ascii", "replace") if isinstance(material, str) else bytes(material)
    raw = raw.strip()
    decoded: bytes | None = None
    if len(raw) == 44:
        try:
            decoded = base64.urlsafe_b64decode(raw)
        except (binascii.Error, ValueError):
            decoded = None
    elif len(raw) == 64:
        try:
            decoded = binascii.a2b_hex(raw)
        except (binascii.Error, ValueError):
            decoded = None
    elif len(raw) == 32:
        decoded = raw
    if decoded is None or len(decoded) != 32:
        raise ValueError("an encryption key must be 32 bytes: Fernet/base64 (44 characters) or hex (64)")
    return base64.urlsafe_b64encode(decoded)


def derive_fernet_key(secret: str | bytes, *, info: bytes = DERIVATION_INFO) -> bytes:
    """A Fernet key derived from a host's secret (HKDF-SHA256), for hosts that configure none."""
    material = secret.encode("utf-8") if isinstance(secret, str) else secret
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)
    return base64.urlsafe_b64encode(derived)


class FernetSealer:
    """Seals with the first key, opens with any (``MultiFernet``). Keys as ``fernet_key`` reads them."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise ValueError("FernetSealer needs at least one key")
        self._fernet = MultiFernet([Fernet(fernet_key(key)) for key in keys])

    def seal(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, text: str) -> str:
        if not text.startswith(PREFIX):
            return text  # written before encryption was on: sealed at its next save
        try:
            return self._fernet.decrypt(text[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as error:
            raise StoreKeyMismatch(detail="no configured encryption key opens a stored value") from error


def seal_value(sealer: Sealer | None, text: str) -> str:
    """``text`` as a store keeps it: sealed, or as is without a sealer."""
    return text if sealer is None else sealer.seal(text)


def open_value(sealer: Sealer | None, text: str) -> str:
    """What a store read back: opened; a sealed value without a sealer is ``store_key_mismatch``."""
    if sealer is not None:
        return sealer.open(text)
    if text.startswith(PREFIX):
        raise StoreKeyMismatch(detail="a stored value is encrypted, and no encryption key is configured")
    return text


__all__ = [
    "PREFIX",
    "FernetSealer",
    "Sealer",
    "StoreKeyMismatch",
    "derive_fernet_key",
    "fernet_key",
    "open_value",
    "seal_value",
]
