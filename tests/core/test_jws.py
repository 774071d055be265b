"""lti_core.lti13.jws: one spelling of a compact JWS, refused cleanly otherwise (never a ValueError or RecursionError).

Plain data: tokens are built by hand (base64url of chosen bytes); no key is needed to test the outer shape.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from lti_core.errors import AuthenticationFailed, InvalidRequest
from lti_core.lti13.jws import MAX_JSON_DEPTH, MAX_TOKEN_LENGTH, CompactJws, b64decode, parse_compact, parse_payload
from lti_core.lti13.launch import split_token

HEADER = {"alg": "RS256", "typ": "JWT", "kid": "k1"}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def seg(value: Any) -> str:
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


def token(header: Any = None, payload: Any = None, signature: bytes = b"\x01\x02\x03\x04sig") -> str:
    header = HEADER if header is None else header
    payload = {"sub": "2"} if payload is None else payload
    return f"{seg(header)}.{seg(payload)}.{b64(signature)}"


def malformed(call: Any, *args: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        call(*args)
    assert (info.value.reason, info.value.status) == ("id_token_malformed", 400)
    return info.value


# -- the good shape ---------------------------------------------------------------------------


def test_parse_compact_splits_and_decodes_the_header_only():
    parsed = parse_compact(token())
    assert parsed == CompactJws(HEADER, seg(HEADER), seg({"sub": "2"}), b"\x01\x02\x03\x04sig", payload=b'{"sub": "2"}')
    assert parsed.signing_input == f"{seg(HEADER)}.{seg({'sub': '2'})}".encode()
    assert parse_payload(parsed.payload_segment) == {"sub": "2"}


def test_split_token_keeps_its_shape():
    assert split_token(token()) == (HEADER, seg(HEADER), seg({"sub": "2"}), b"\x01\x02\x03\x04sig")


def test_empty_signature_segment_is_well_formed():
    """alg "none" has an empty signature: refusing it is the launch's job (alg_not_allowed), not the parser's."""
    assert parse_compact(token(signature=b"")).signature == b""


@pytest.mark.parametrize(
    "payload",
    [
        {"exp": 10**300, "iat": 1_760_000_000},  # big ints are exact: the launch bounds exp and iat
        {"a": -0.0, "b": 1.5e308, "c": 2.2e-308},
        {"nested": [[[[{"ok": True}]]]]},
        {"brackets in strings do not nest": "[" * 200 + "{" * 200},
        {"escaped quote": 'a"[[[[[[[[[[[[[[[[[[[[[[', "backslash": "\\"},
        {"unicode": "Zoë 🎓", "escaped pair": "\ud83c\udf93", "escaped backslash": "\\ud800"},
    ],
    ids=["big-int", "floats", "nested", "brackets-in-strings", "escapes", "unicode"],
)
def test_payloads_that_are_strict_json(payload):
    assert parse_payload(seg(payload)) == json.loads(json.dumps(payload))


def nested(depth: int) -> bytes:
    """An object holding lists, ``depth`` deep in all."""
    return b'{"x":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_depth_up_to_the_bound_is_accepted():
    assert parse_payload(seg(nested(MAX_JSON_DEPTH))) == {"x": json.loads(b"[" * 15 + b"]" * 15)}
    malformed(parse_payload, seg(nested(MAX_JSON_DEPTH + 1)))


# -- segments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "..", id="three-empty-segments"),
        pytest.param(lambda: token().rsplit(".", 1)[0], id="two-segments"),
        pytest.param(lambda: token() + ".", id="four-segments"),
        pytest.param(lambda: token() + "A" * MAX_TOKEN_LENGTH, id="too-long"),
        pytest.param(lambda: seg(HEADER) + "=." + seg({}) + ".c2ln", id="padding"),
        pytest.param(lambda: token() + "==", id="padded-signature"),
        pytest.param(lambda: " " + token(), id="leading-space"),
        pytest.param(lambda: token() + "\n", id="trailing-newline"),
        pytest.param(lambda: token().replace(".", ".\t", 1), id="tab-in-payload"),
        pytest.param(lambda: token(signature=b"\xfb\xff").replace("-", "+").replace("_", "/"), id="std-alphabet"),
        pytest.param(lambda: token().rsplit(".", 1)[0] + ".QUJDRA+", id="plus"),
        pytest.param(lambda: token().rsplit(".", 1)[0] + ".QUJDR", id="length-mod-4-is-1"),
        pytest.param(lambda: token().rsplit(".", 1)[0] + ".QR", id="non-zero-trailing-bits-2"),
        pytest.param(lambda: token().rsplit(".", 1)[0] + ".QUJ", id="non-zero-trailing-bits-3"),
        pytest.param(lambda: "é.é.é", id="non-ascii"),
        pytest.param(lambda: token().replace("e", "\uff45", 1), id="fullwidth-letter"),
        pytest.param(lambda: token().rsplit(".", 2)[0] + ".e30%.c2ln", id="percent"),
    ],
)
def test_segments_must_be_canonical_base64url(make):
    malformed(parse_compact, make())


def test_non_zero_trailing_bits_would_decode_to_the_same_bytes():
    """Why the check exists: "QQ" and "QR" are both b"A" to a lenient decoder."""
    assert base64.urlsafe_b64decode("QR==") == base64.urlsafe_b64decode("QQ==") == b"A"
    assert b64decode("QQ") == b"A"
    malformed(b64decode, "QR")


@pytest.mark.parametrize("value", [None, b"a.b.c", 42, ["a", "b", "c"]], ids=["none", "bytes", "int", "list"])
def test_a_token_that_is_not_a_string(value):
    malformed(parse_compact, value)


def test_the_payload_spelling_is_checked_before_the_signature():
    header, _, signature = token().split(".")
    malformed(parse_compact, f"{header}.e30=.{signature}")


# -- JSON -------------------------------------------------------------------------------------

BAD_JSON = [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"", id="empty"),
    pytest.param(b"[1, 2]", id="list"),
    pytest.param(b'"RS256"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"alg": "RS256"} x', id="trailing-data"),
    pytest.param(b'{"alg": "RS256", "alg": "none"}', id="duplicate-member"),
    pytest.param(b'{"x": {"kid": "a", "kid": "b"}}', id="nested-duplicate"),
    pytest.param(b'{"x": [{"a": 1, "a": 1}]}', id="duplicate-in-list"),
    pytest.param(b'{"exp": NaN}', id="NaN"),
    pytest.param(b'{"exp": Infinity}', id="Infinity"),
    pytest.param(b'{"exp": -Infinity}', id="-Infinity"),
    pytest.param(b'{"exp": 1e400}', id="1e400"),
    pytest.param(b'{"exp": -1E+999}', id="-1e999"),
    pytest.param(b'{"exp": ' + b"9" * 5000 + b"}", id="int-beyond-python-digit-limit"),
    pytest.param(b'{"sub": "\xff"}', id="invalid-utf8"),
    pytest.param(b'{"sub": "\xed\xa0\x80"}', id="utf8-encoded-surrogate"),
    pytest.param(b"\xef\xbb\xbf{}", id="bom"),
    pytest.param('{"alg": "RS256"}'.encode("utf-16"), id="utf-16"),
    pytest.param('{"alg": "RS256"}'.encode("utf-32-le"), id="utf-32"),
    pytest.param(b'{"a": "raw\ncontrol"}', id="raw-control-character"),
    pytest.param(b'{"name": "\\ud800"}', id="lone-high-surrogate"),
    pytest.param(b'{"name": "x\\udc00y"}', id="lone-low-surrogate"),
    pytest.param(b'{"roles": ["a", "\\udfff\\ud83c"]}', id="reversed-pair-in-list"),
    pytest.param(b'{"\\ud800": 1}', id="surrogate-in-a-name"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="5000-deep-list"),
    pytest.param(b'{"a":' * 5000 + b"1" + b"}" * 5000, id="5000-deep-object"),
    pytest.param(b"[" * 100_000, id="unterminated-deep"),
    pytest.param(b'{"a": "unterminated ' + b"[" * 5000, id="unterminated-string"),
]


@pytest.mark.parametrize("raw", BAD_JSON)
def test_header_must_be_strict_json_object(raw):
    malformed(parse_compact, f"{seg(raw)}.{seg({})}.c2ln")


@pytest.mark.parametrize("raw", BAD_JSON)
def test_payload_must_be_strict_json_object(raw):
    malformed(parse_payload, seg(raw))


def test_header_nested_5000_deep_is_a_clean_refusal():
    """It used to raise RecursionError out of json.loads."""
    raw = "".join(['{"x":'] * 5000) + '{"alg":"RS256"}' + "}" * 5000
    error = malformed(parse_compact, f"{seg(raw.encode())}.{seg({})}.c2ln")
    assert "deep" in error.detail


# -- crit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "b64", None], ids=["exp", "b64", "empty", "string", "null"])
def test_any_crit_header_is_refused(crit):
    """RFC 7515 §4.1.11: extensions listed in crit must be understood, and this tool understands none."""
    with pytest.raises(AuthenticationFailed) as info:
        parse_compact(token({**HEADER, "crit": crit, "b64": False}))
    assert (info.value.reason, info.value.status) == ("crit_not_supported", 401)
