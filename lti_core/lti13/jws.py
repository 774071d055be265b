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
from collections.abc import Callable
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


# "-_" become "+/"; "+", "/" and "=" of the input become "!", which strict a2b_base64 refuses: one
# C pass maps the alphabet and rejects the standard alphabet's letters and any padding in the input.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
# The padding a2b_base64 needs, by len(segment) % 4 (1 is refused before).
_PADDING = (b"", b"", b"==", b"=")
# The value of the last character of a segment whose length % 4 is 2 or 3 has 4 or 2 unused low
# bits; canonical spelling keeps them zero.
_UNUSED_BITS_MASK = (0, 0, 0x0F, 0x03)
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64decode(segment: str) -> bytes:
    """Canonical unpadded base64url only: the one spelling that re-encodes to itself."""
    remainder = len(segment) % 4
    # isascii is O(1) on str; a non-ASCII character is never base64url.
    if remainder == 1 or not segment.isascii():
        raise _malformed("segment is not unpadded base64url")
    # Unused bits in the last character give several spellings of the same bytes.
    if remainder and _ALPHABET.find(segment[-1]) & _UNUSED_BITS_MASK[remainder]:
        raise _malformed("segment is not canonical base64url")
    try:
        # strict_mode refuses any character outside the alphabet (binascii otherwise skips them),
        # and so the "!" that "+", "/" and "=" were mapped to.
        standard = segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[remainder]
        return binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error as exc:
        raise _malformed("segment is not unpadded base64url") from exc


def _depth_within_bound(value: Any) -> bool:
    """True when ``value`` nests at most MAX_JSON_DEPTH containers deep.

    Walked one level at a time, without recursion: after MAX_JSON_DEPTH levels nothing may be left.
    Only containers are kept from level to level, so the walk costs one isinstance per value.
    """
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_JSON_DEPTH):
        if not level:
            return True
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below += [child for child in children if isinstance(child, dict | list)]
        level = below
    return not level


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


# Built once: json.loads would build a decoder (and its C scanner) for every call with these hooks.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_float=_finite_float, parse_constant=_non_json_constant
)
# The C scanner JSONDecoder made for itself (typeshed does not declare the attribute).
_scan_once: Callable[[str, int], tuple[Any, int]] = vars(_DECODER)["scan_once"]


def _decode_json(text: str) -> Any:
    """json.loads with the strict hooks; the C scanner is called directly when the text is one value
    with no surrounding whitespace (what every platform signs), else the decoder's own whitespace
    handling and error messages take over."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        value = _DECODER.decode(text)
    return value


def _within_depth_bound(text: str, value: Any) -> bool:
    # Every container opens with a "[" or "{" of its own, so their count bounds the depth: a token
    # with at most MAX_JSON_DEPTH of them (most launches) needs no walk.
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return True
    return _depth_within_bound(value)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes: bounded depth, unique names, finite numbers."""
    try:
        # Decoded here: json.loads(bytes) would also guess UTF-16 and UTF-32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("not UTF-8") from exc
    try:
        value = _decode_json(text)
    except RecursionError as exc:
        # json's C decoder guards its own recursion: nesting deeper than Python's stack ends here.
        raise _malformed("JSON nested too deep") from exc
    except ValueError as exc:
        raise _malformed(f"not JSON: {exc}") from exc
    if not _within_depth_bound(text, value):
        raise _malformed("JSON nested too deep")
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise _malformed("lone surrogate in a JSON string")
    if not isinstance(value, dict):
        raise _malformed("not a JSON object")
    return value


# Decoded headers by their segment: a platform signs every launch with the same few headers, so
# each is decoded once. Only flat headers are kept (no object or list values), so the copy every
# caller gets shares nothing mutable with the cache. Bounded: headers nobody reuses only evict.
_HEADERS: dict[str, dict[str, Any]] = {}
_MAX_HEADERS = 64


def _parse_header(segment: str) -> dict[str, Any]:
    cached = _HEADERS.get(segment)
    if cached is not None:
        return dict(cached)
    header = parse_json_object(b64decode(segment))
    if not any(isinstance(value, dict | list) for value in header.values()):
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()
        _HEADERS[segment] = dict(header)
    return header


def parse_compact(token: str) -> CompactJws:
    """The header and segments of a compact JWS. Only the header is decoded: the payload waits for the signature."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise _malformed("not a string or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise _malformed("not three segments")
    header_segment, payload_segment, signature_segment = parts
    header = _parse_header(header_segment)
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
