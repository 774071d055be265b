"""The shortcuts of the launch's fast path keep every refusal: what each one skips, it skips only when
the result cannot differ (no timing here; speed is measured in bench/launch.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from lti_core.errors import AuthenticationFailed, InvalidRequest
from lti_core.lti13 import jws
from lti_core.lti13.jws import MAX_JSON_DEPTH, b64decode, parse_compact, parse_json_object
from lti_core.lti13.launch import _roles_of, _target_belongs_to_tool
from lti_core.roles import LEARNER
from lti_core.types import Role

HEADER = {"alg": "RS256", "typ": "JWT", "kid": "k1"}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def seg(value: Any) -> str:
    return b64(json.dumps(value).encode())


def malformed(call: Any, *args: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        call(*args)
    assert info.value.reason == "id_token_malformed"


# -- base64url: "+", "/" and "=" are mapped to a character strict a2b_base64 refuses ----------------


@pytest.mark.parametrize("segment", ["QUJD+0FC", "QUJD/0FC", "QUJDRA==", "QUJD=EFC", "QUJD!EFC", "QUJD\x00EFC"])
def test_characters_outside_base64url_are_refused_anywhere(segment):
    malformed(b64decode, segment)


def test_every_byte_value_round_trips():
    raw = bytes(range(256))
    for cut in range(4):
        assert b64decode(b64(raw[cut:])) == raw[cut:]


# -- JSON: the decoder built once, whitespace, the depth bound by counting brackets ----------------


def test_whitespace_around_the_json_value_is_still_json():
    assert parse_json_object(b' \n{"a": 1}\t') == {"a": 1}
    malformed(parse_json_object, b'{"a": 1} {"b": 2}')


def test_many_brackets_but_shallow_is_walked_and_accepted():
    value = {"lists": [[1]] * (MAX_JSON_DEPTH + 5), "objects": [{"a": {}}] * 10}
    assert parse_json_object(json.dumps(value).encode()) == value


def test_many_brackets_and_deep_is_refused():
    deep = b'{"x":' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"
    malformed(parse_json_object, deep)
    malformed(parse_json_object, b'{"pad": [[], [], [], [], []], "x":' + deep + b"}")


def test_duplicates_are_refused_after_a_good_parse():
    assert parse_json_object(b'{"a": {"b": 1}}') == {"a": {"b": 1}}
    malformed(parse_json_object, b'{"a": {"b": 1, "b": 1}}')


# -- the header cache ------------------------------------------------------------------------


def test_a_cached_header_cannot_be_changed_by_a_caller():
    token = f"{seg(HEADER)}.{seg({'sub': '1'})}.c2ln"
    parse_compact(token).header["alg"] = "none"
    assert parse_compact(token).header == HEADER


def test_crit_is_refused_on_every_call_not_only_the_first():
    token = f"{seg({**HEADER, 'crit': 'b64'})}.{seg({})}.c2ln"
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            parse_compact(token)


def test_a_cached_header_does_not_excuse_a_bad_payload_or_signature():
    good = f"{seg(HEADER)}.{seg({})}.c2ln"
    parse_compact(good)
    malformed(parse_compact, f"{seg(HEADER)}.e30=.c2ln")
    malformed(parse_compact, f"{seg(HEADER)}.{seg({})}.c2l")


def test_the_header_cache_is_bounded():
    for n in range(jws._MAX_HEADERS * 3):
        parse_compact(f"{seg({**HEADER, 'kid': f'k{n}'})}.{seg({})}.c2ln")
    assert len(jws._HEADERS) <= jws._MAX_HEADERS


def test_headers_with_nested_values_are_not_cached():
    header = {**HEADER, "jwk": {"kty": "RSA"}}
    parse_compact(f"{seg(header)}.{seg({})}.c2ln")
    assert seg(header) not in jws._HEADERS


# -- the cached pure functions of claims ---------------------------------------------------------


def test_target_check_is_the_same_cached_or_not():
    bases = ("https://tool.example/app",)
    for target in ("https://tool.example/app/x", "https://evil.example/app/x", "https://tool.example/app/../y"):
        assert _target_belongs_to_tool(target, bases) == _target_belongs_to_tool(target, list(bases))
    long_target = "https://tool.example/app/" + "a" * 5000
    assert _target_belongs_to_tool(long_target, bases)
    assert not _target_belongs_to_tool("https://tool.example/other/" + "a" * 5000, bases)


def test_roles_skip_non_strings_and_a_learner_stays_a_learner():
    admin = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
    assert _roles_of([LEARNER, 3, None, admin]) == ((LEARNER, admin), Role.LEARNER)
    many = [LEARNER] + [f"urn:x:{n}" for n in range(100)]
    assert _roles_of(many)[1] is Role.LEARNER
