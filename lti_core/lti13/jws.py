"""Strict decoding of compact JWS (RFC 7515 §7.1): the id_token's outer shape, before and after its signature.

Lenient parsing is where token confusion starts: two parsers that read the same bytes differently
(padding, whitespace, the unused bits of the last base64 character, a member named twice, ``NaN``)
let an attacker show one value to a check and another to its user. So only one spelling of each
token is accepted, and every refusal is an ``InvalidRequest`` with the reason ``id_token_malformed``
(or ``crit_not_supported``), never a ``ValueError`` or a ``RecursionError``.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from lti_core.errors import AuthenticationFailed, InvalidRequest
from lti_core.i18n import N_

MAX_TOKEN_LENGTH = 64 * 1024
# Real id_tokens nest 3 or 4 deep (claim → object → list); the bound only has to stop the C
# decoder from recursing until Python's stack gives out.
MAX_JSON_DEPTH = 16

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# A JSON string (escapes included) or one bracket: strings are skipped, so a "[" in a value is not nesting.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class CompactJws:
    """The three parts of a compact JWS; nothing here is trusted before the signature is checked."""

    header: dict[str, Any]
    header_segment: str
    payload_segment: str
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        # The segments are checked to be base64url, so this is plain ASCII.
        return f"{self.header_segment}.{self.payload_segment}".encode("ascii")


def _malformed(detail: str) -> InvalidRequest:
    return InvalidRequest("id_token_malformed", N_("The launch token is malformed."), detail=detail)


def b64decode(segment: str) -> bytes:
    """Canonical unpadded base64url only: the one spelling that re-encodes to itself."""
    if _BASE64URL.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise _malformed("segment is not unpadded base64url")
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    # Non-zero unused bits in the last character give several spellings of the same bytes.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise _malformed("segment is not canonical base64url")
    return raw


def _scan(text: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH without recursing (json would hit RecursionError),
    and strings with a lone surrogate escape ("\\ud800": no UTF-8 spelling, so any later encode fails).

    Up to the first syntax error this reads tokens as json does, and json stops there too.
    """
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _malformed("JSON nested too deep")
        elif token in ("]", "}"):
            depth -= 1
        elif "\\u" in token and _has_lone_surrogate(token):
            raise _malformed("lone surrogate in a JSON string")


def _has_lone_surrogate(string_token: str) -> bool:
    try:
        json.loads(string_token).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except ValueError:
        return False  # not a valid string: json.loads of the whole text reports it
    return False


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7515 §5.2 and RFC 7519 §4: a name given twice must be refused, not "last one wins".
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


def _finite_float(text: str) -> float:
    # 1e400 reads as inf: an exp that never comes.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _non_json_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON has neither.
    raise ValueError(f"not a JSON number: {name}")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes: bounded depth, unique names, finite numbers."""
    try:
        # Decoded here: json.loads(bytes) would also guess UTF-16 and UTF-32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("not UTF-8") from exc
    _scan(text)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_float=_finite_float,
            parse_constant=_non_json_constant,
        )
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces, _scan stops it first
        raise _malformed(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _malformed("not a JSON object")
    return value


def parse_compact(token: str) -> CompactJws:
    """The header and segments of a compact JWS. Only the header is decoded: the payload waits for the signature."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("not a string or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise _malformed("not three segments")
    header_segment, payload_segment, signature_segment = parts
    header = parse_json_object(b64decode(header_segment))
    b64decode(payload_segment)  # its spelling is checked now; its JSON only once the signature holds
    signature = b64decode(signature_segment)
    if "crit" in header:
        # RFC 7515 §4.1.11: extensions named in crit must be understood; this tool understands none.
        raise AuthenticationFailed(
            "crit_not_supported", N_("The launch token uses an extension this tool does not support.")
        )
    return CompactJws(header, header_segment, payload_segment, signature)


def parse_payload(segment: str) -> dict[str, Any]:
    """The claims of a payload segment whose signature has been verified."""
    return parse_json_object(b64decode(segment))
