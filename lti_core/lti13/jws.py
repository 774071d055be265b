"""Strict decoding of compact JWS (RFC 7515 §7.1): the id_token's outer shape, before and after its signature.

Lenient parsing is where token confusion starts: two parsers that read the same bytes differently
(padding, whitespace, the unused bits of the last base64 character, a member named twice, ``NaN``)
let an attacker show one value to a check and another to its user. So only one spelling of each
token is accepted, and every refusal is an ``InvalidRequest`` with the reason ``id_token_malformed``
(or ``crit_not_supported``), never a ``ValueError`` or a ``RecursionError``.
"""

from __future__ import annotations

import binascii
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

# A \\u escape of a surrogate: only then can a decoded string hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class CompactJws:
    """The three parts of a compact JWS; nothing here is trusted before the signature is checked."""

    header: dict[str, Any]
    header_segment: str
    payload_segment: str
    signature: bytes
    #: The payload's bytes, decoded once: their JSON is read only after the signature holds.
    payload: bytes = b""

    @property
    def signing_input(self) -> bytes:
        # The segments are checked to be base64url, so this is plain ASCII.
        return f"{self.header_segment}.{self.payload_segment}".encode("ascii")


def _malformed(detail: str) -> InvalidRequest:
    return InvalidRequest("id_token_malformed", N_("The launch token is malformed."), detail=detail)


_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# The value of the last character of a segment whose length % 4 is 2 or 3 has 4 or 2 unused low
# bits; canonical spelling keeps them zero.
_UNUSED_BITS_MASK = {2: 0x0F, 3: 0x03}
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64decode(segment: str) -> bytes:
    """Canonical unpadded base64url only: the one spelling that re-encodes to itself."""
    remainder = len(segment) % 4
    if remainder == 1 or "+" in segment or "/" in segment or "=" in segment or not segment.isascii():
        raise _malformed("segment is not unpadded base64url")
    # Unused bits in the last character give several spellings of the same bytes.
    mask = _UNUSED_BITS_MASK.get(remainder)
    if mask is not None and _ALPHABET.find(segment[-1]) & mask:
        raise _malformed("segment is not canonical base64url")
    try:
        # strict_mode refuses any character outside the alphabet (binascii otherwise skips them).
        standard = segment.encode("ascii").translate(_TO_STANDARD) + b"=" * (-remainder % 4)
        return binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error as exc:
        raise _malformed("segment is not unpadded base64url") from exc


def _depth_within_bound(value: Any) -> bool:
    """True when ``value`` nests at most MAX_JSON_DEPTH containers deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def _has_lone_surrogate(value: Any) -> bool:
    """A string holding a lone surrogate ("\\ud800" in JSON) has no UTF-8 spelling: any later encode fails."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
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
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_float=_finite_float,
            parse_constant=_non_json_constant,
        )
    except RecursionError as exc:
        # json's C decoder guards its own recursion: nesting deeper than Python's stack ends here.
        raise _malformed("JSON nested too deep") from exc
    except ValueError as exc:
        raise _malformed(f"not JSON: {exc}") from exc
    # Bounds checked on the decoded value: a walk over a few dozen containers, instead of a scan of
    # every character of the text.
    if not _depth_within_bound(value):
        raise _malformed("JSON nested too deep")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise _malformed("lone surrogate in a JSON string")
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
    payload = b64decode(payload_segment)  # its spelling is checked now; its JSON only once the signature holds
    signature = b64decode(signature_segment)
    if "crit" in header:
        # RFC 7515 §4.1.11: extensions named in crit must be understood; this tool understands none.
        raise AuthenticationFailed(
            "crit_not_supported", N_("The launch token uses an extension this tool does not support.")
        )
    return CompactJws(header, header_segment, payload_segment, signature, payload)


def parse_payload(segment: str) -> dict[str, Any]:
    """The claims of a payload segment whose signature has been verified."""
    return parse_json_object(b64decode(segment))
