"""The tool's token client (RFC 7523 client assertion, client_credentials grant), as plain data: the
assertion is checked with pyjwt against the tool's published JWKS, as a platform checks it."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import jwt
import pytest
from joserfc.jwk import RSAKey

from lti_core.http import HttpResponse
from lti_core.lti13 import token
from lti_core.lti13.token import (
    CLIENT_ASSERTION_TYPE,
    AccessToken,
    build_client_assertion,
    build_token_request,
    parse_token_response,
)
from lti_core.lti13.tool_keys import ToolKeySet, generate_tool_key
from lti_core.memory import MemoryStore
from lti_core.types import Registration, ToolKey

NOW = 1_760_000_000.0
TOKEN_URL = "https://moodle.example/mod/lti/token.php"
REGISTRATION = Registration(
    issuer="https://moodle.example",
    client_id="aBc123",
    auth_login_url="https://moodle.example/mod/lti/auth.php",
    auth_token_url=TOKEN_URL,
    key_set_url="https://moodle.example/mod/lti/certs.php",
)
SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
)


@pytest.fixture(scope="module")
def made_keys() -> list[ToolKey]:
    return [generate_tool_key(now=NOW) for _ in range(2)]


@pytest.fixture
def keyset(made_keys) -> ToolKeySet:
    store = MemoryStore()
    store.save_tool_key(made_keys[0])
    return ToolKeySet(store)


def verify(assertion: str, keyset: ToolKeySet) -> dict[str, object]:
    """What the platform does: the key by kid from the JWKS (as received over HTTP), then pyjwt."""
    jwks = jwt.PyJWKSet.from_dict(json.loads(json.dumps(keyset.jwks(NOW))))
    header = jwt.get_unverified_header(assertion)
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims: dict[str, object] = jwt.decode(
        assertion, key.key, algorithms=["RS256"], audience=TOKEN_URL, options={"verify_exp": False, "verify_iat": False}
    )
    return claims


def test_assertion_is_rfc7523_and_verifies_against_the_tool_jwks(keyset, made_keys):
    assertion = build_client_assertion(keyset, "aBc123", TOKEN_URL, NOW)
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": made_keys[0].kid}
    claims = verify(assertion, keyset)
    assert claims["iss"] == claims["sub"] == "aBc123" and claims["aud"] == TOKEN_URL
    assert claims["iat"] == int(NOW) and claims["exp"] == int(NOW) + token.ASSERTION_LIFETIME
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 20
    assert verify(build_client_assertion(keyset, "aBc123", TOKEN_URL, NOW), keyset)["jti"] != claims["jti"]


def test_assertion_is_signed_with_the_newest_key_after_a_rotation(keyset, made_keys, monkeypatch):
    monkeypatch.setattr("lti_core.lti13.tool_keys.generate_tool_key", lambda bits=2048, now=None: made_keys[1])
    keyset.rotate(NOW)
    assertion = build_client_assertion(keyset, "aBc123", TOKEN_URL, NOW)
    assert jwt.get_unverified_header(assertion)["kid"] == made_keys[1].kid
    assert verify(assertion, keyset)["sub"] == "aBc123"


def test_assertions_never_load_the_key_again(keyset, monkeypatch):
    loads: list[object] = []
    original = RSAKey.import_key

    def counting(*args, **kwargs):
        loads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(RSAKey, "import_key", counting)
    for _ in range(5):
        build_client_assertion(keyset, "aBc123", TOKEN_URL, NOW)
    assert len(loads) == 1


def test_token_request_is_a_client_credentials_form_post():
    request = build_token_request(REGISTRATION, SCOPES, "the.assertion.jwt")
    assert (request.method, request.url) == ("POST", TOKEN_URL)
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.header("Accept") == "application/json"
    form = parse_qs(request.body.decode("ascii"), strict_parsing=True)
    assert form == {
        "grant_type": ["client_credentials"],
        "client_assertion_type": [CLIENT_ASSERTION_TYPE],
        "client_assertion": ["the.assertion.jwt"],
        "scope": [" ".join(SCOPES)],
    }
    assert CLIENT_ASSERTION_TYPE == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def answer(status: int, document: object) -> HttpResponse:
    return HttpResponse(status, (("Content-Type", "application/json"),), json.dumps(document).encode())


def test_token_response_gives_the_token_and_its_expiry():
    granted = parse_token_response(
        answer(200, {"access_token": "tok-123", "token_type": "bearer", "expires_in": 3600, "scope": " ".join(SCOPES)}),
        NOW,
    )
    assert granted == AccessToken("tok-123", NOW + 3600, "Bearer", SCOPES)
    assert "tok-123" not in repr(granted)
    assert (
        parse_token_response(answer(200, {"access_token": "t", "token_type": "Bearer"}), NOW).expires_at == NOW + 3600
    )
    assert parse_token_response(answer(200, {"access_token": "t", "expires_in": "60"}), NOW).expires_at == NOW + 60


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (answer(401, {"error": "invalid_client"}), "token_request_refused"),
        (answer(400, {"error": "invalid_scope", "error_description": "no"}), "token_request_refused"),
        (HttpResponse(500, (), b"<html>oops</html>"), "token_request_refused"),
        (HttpResponse(302, (("Location", "/login"),), b""), "token_request_refused"),
        (HttpResponse(200, (), b"<html>not json</html>"), "token_response_malformed"),
        (HttpResponse(200, (), b"\xff\xfe"), "token_response_malformed"),
        (answer(200, ["access_token"]), "token_response_malformed"),
        (answer(200, {"token_type": "Bearer"}), "token_response_malformed"),
        (answer(200, {"access_token": ""}), "token_response_malformed"),
        (answer(200, {"access_token": 5}), "token_response_malformed"),
        (answer(200, {"access_token": "t", "token_type": "mac"}), "token_response_malformed"),
        (answer(200, {"access_token": "t", "expires_in": -1}), "token_response_malformed"),
        (answer(200, {"access_token": "t", "expires_in": True}), "token_response_malformed"),
        (answer(200, {"access_token": "t", "expires_in": 1.5}), "token_response_malformed"),
    ],
)
def test_token_response_refusals_are_reason_codes(response, reason, refused):
    with refused(reason, 502) as caught:
        parse_token_response(response, NOW)
    assert "access_token" not in caught[0].detail or reason == "token_response_malformed"
