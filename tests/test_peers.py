"""Self-tests of the protocol peers: if these fail, every launch test built on them means nothing."""

from __future__ import annotations

import base64
import json
import time
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import jwt
import pytest
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature

from lti_peer import DELETE
from lti_peer.lti11 import INSTRUCTOR, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import (
    CLAIM_DEPLOYMENT_ID,
    CLAIM_MESSAGE_TYPE,
    CLAIM_ROLES,
    CLAIM_TARGET_LINK_URI,
    CLAIM_VERSION,
    INSTRUCTOR_ROLES,
    PlatformPeer,
    attacker_key,
    parse_autosubmit_form,
)

REDIRECT_URI = "http://testserver/lti_publish/lti13/launch"
TARGET = "http://testserver/lti_publish/content/demo/"


@pytest.fixture
def platform():
    with PlatformPeer(redirect_uris=[REDIRECT_URI]) as peer:
        yield peer


def fetch_jwks(peer: PlatformPeer) -> tuple[dict, dict[str, str]]:
    with urlopen(peer.jwks_url, timeout=10) as response:  # noqa: S310 - loopback peer
        return json.loads(response.read()), dict(response.headers)


def verify(token: str, peer: PlatformPeer, jwks: dict) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid].key
    return jwt.decode(token, key, algorithms=["RS256"], audience=peer.client_id, issuer=peer.issuer)


def segments(token: str) -> tuple[dict, dict]:
    head, body = token.split(".")[:2]
    return tuple(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in (head, body))


def test_jwks_verifies_the_platforms_own_tokens(platform):
    jwks, headers = fetch_jwks(platform)
    assert platform.jwks_fetches == 1
    assert "Cache-Control" not in headers
    assert [k["kid"] for k in jwks["keys"]] == [platform.signing_kid]
    assert {"kty", "alg", "kid", "e", "n", "use"} <= set(jwks["keys"][0])

    claims = verify(platform.id_token("n-1", target_link_uri=TARGET), platform, jwks)
    assert claims["nonce"] == "n-1"
    assert claims["exp"] == claims["iat"] + 60
    assert claims["sub"].isdigit()
    assert claims[CLAIM_DEPLOYMENT_ID] == "2" == platform.deployment_id
    assert claims[CLAIM_TARGET_LINK_URI] == TARGET
    assert claims[CLAIM_VERSION] == "1.3.0"
    assert claims[CLAIM_MESSAGE_TYPE] == "LtiResourceLinkRequest"
    assert claims[CLAIM_ROLES] == ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]


def test_overrides_set_and_delete_claims(platform):
    token = platform.id_token(
        "n", roles=INSTRUCTOR_ROLES, sub="7", email=DELETE, deployment_id=DELETE, claims={"https://example.com/x": 1}
    )
    _, body = segments(token)
    assert body[CLAIM_ROLES] == INSTRUCTOR_ROLES
    assert body["sub"] == "7"
    assert "email" not in body and CLAIM_DEPLOYMENT_ID not in body
    assert body["https://example.com/x"] == 1


def test_attack_tokens(platform):
    header, _ = segments(platform.id_token("n", kid=None))
    assert "kid" not in header

    token = platform.id_token("n", alg="none")
    header, _ = segments(token)
    assert header["alg"] == "none" and token.endswith(".")

    header, _ = segments(platform.id_token("n", alg="HS256"))
    assert header["alg"] == "HS256" and header["kid"] == platform.signing_kid

    jwks, _ = fetch_jwks(platform)
    forged = platform.id_token("n", key=attacker_key())
    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged, platform, jwks)


def test_key_rotation_add_and_remove(platform):
    platform.jwks_cache_control = "max-age=3600"
    first = platform.signing_kid
    second = platform.rotate_key()
    jwks, headers = fetch_jwks(platform)
    assert headers["Cache-Control"] == "max-age=3600"
    assert {k["kid"] for k in jwks["keys"]} == {first, second}
    assert segments(platform.id_token("n"))[0]["kid"] == second
    verify(platform.id_token("n"), platform, jwks)

    platform.remove_key(first)
    third = platform.add_key()
    jwks, _ = fetch_jwks(platform)
    assert {k["kid"] for k in jwks["keys"]} == {second, third}
    assert platform.signing_kid == second

    fresh = platform.rotate_key(keep_old=False)
    jwks, _ = fetch_jwks(platform)
    assert [k["kid"] for k in jwks["keys"]] == [fresh]
    assert platform.jwks_fetches == 3
    assert len({first, second, third, fresh}) == 4


def test_jwks_delay_and_error_status(platform):
    platform.jwks_delay = 0.3
    started = time.monotonic()
    fetch_jwks(platform)
    assert time.monotonic() - started >= 0.3
    platform.jwks_delay = 0
    platform.jwks_status = 503
    with pytest.raises(HTTPError) as caught:
        fetch_jwks(platform)
    assert caught.value.code == 503


def auth_query(platform: PlatformPeer, login: dict[str, str], **changes: str) -> dict[str, str]:
    """The redirect a correct tool makes from Moodle's login initiation."""
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": login["client_id"],
        "redirect_uri": REDIRECT_URI,
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
        "state": "state-123",
        "nonce": "nonce-456",
    }
    query.update(changes)
    return query


def test_oidc_auth_answers_with_an_autosubmit_form(platform):
    login = platform.login_form("http://testserver/lti_publish/lti13/login", TARGET)
    assert set(login) == {"iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id"}
    assert login["iss"] == platform.issuer and login["lti_deployment_id"] == "2"

    location = f"{platform.auth_url}?{urlencode(auth_query(platform, login))}"
    status, action, fields = platform.authorize_redirect(location)
    assert status == 200 and action == REDIRECT_URI
    assert set(fields) == {"id_token", "state"} and fields["state"] == "state-123"
    claims = verify(fields["id_token"], platform, fetch_jwks(platform)[0])
    assert claims["nonce"] == "nonce-456" and claims[CLAIM_TARGET_LINK_URI] == TARGET

    # The same by POST, as some tools do it.
    body = urlencode(auth_query(platform, login)).encode()
    with urlopen(Request(platform.auth_url, data=body), timeout=10) as response:  # noqa: S310
        action, fields = parse_autosubmit_form(response.read())
    assert action == REDIRECT_URI and "id_token" in fields
    assert platform.auth_requests[-1]["nonce"] == "nonce-456"


def test_oidc_auth_refusals(platform):
    login = platform.login_form("http://testserver/lti_publish/lti13/login", TARGET)

    def auth(**changes: str):
        return platform.authorize_redirect(f"{platform.auth_url}?{urlencode(auth_query(platform, login, **changes))}")

    assert auth(redirect_uri="http://evil.example/launch") == (400, "", {})
    assert auth(response_mode="query")[2]["error"] == "invalid_request"
    assert auth(scope="profile")[2]["error"] == "invalid_scope"
    assert auth(client_id="other")[2]["error"] == "unauthorized_client"
    assert auth(login_hint="99")[2]["error"] == "access_denied"
    assert auth(prompt="login")[2]["error_description"] == "Invalid prompt"
    assert auth(nonce="")[2] == {"error": "invalid_request", "state": "state-123"}


def test_login_claims_reach_the_id_token(platform):
    login = platform.login_form(
        "http://testserver/login", TARGET, claims={"roles": INSTRUCTOR_ROLES}, lti_deployment_id=DELETE
    )
    assert "lti_deployment_id" not in login
    _, _, fields = platform.authorize_redirect(f"{platform.auth_url}?{urlencode(auth_query(platform, login))}")
    assert segments(fields["id_token"])[1][CLAIM_ROLES] == INSTRUCTOR_ROLES


def test_token_endpoint_refuses_a_request_without_a_client_assertion(platform):
    """The peer's token endpoint (lti_peer/token.py) answers only signed client assertions (RFC 7523)."""
    with pytest.raises(HTTPError) as caught:
        urlopen(Request(platform.token_url, data=b"grant_type=client_credentials"), timeout=10)  # noqa: S310
    assert caught.value.code == 400


def test_lti11_signature_verifies_with_oauthlib():
    url = "https://tool.example/lti_publish/content/abc/ltiaccess?from=moodle"
    params = moodle_lti11_params(roles=INSTRUCTOR, custom_content_id="abc", lis_person_name_full="Zoé Ünïcode")
    form = sign_lti11_launch(url, "moodle-key", "s3cret", params, timestamp=1700000000, nonce="abc123")
    assert form["oauth_signature_method"] == "HMAC-SHA1"
    assert form["oauth_timestamp"] == "1700000000" and form["oauth_nonce"] == "abc123"
    assert form["oauth_consumer_key"] == "moodle-key" and form["oauth_version"] == "1.0"
    assert form["lti_message_type"] == "basic-lti-launch-request" and form["lti_version"] == "LTI-1p0"
    assert form["tool_consumer_info_product_family_code"] == "moodle"
    assert form["custom_content_id"] == "abc" and form["roles"] == INSTRUCTOR

    # The verification a tool does, with oauthlib's server-side primitives.
    request = OAuthRequest(url, http_method="POST")
    request.params = signature.collect_parameters(uri_query="from=moodle", body=urlencode(form))
    request.signature = form["oauth_signature"]
    assert signature.verify_hmac_sha1(request, "s3cret")
    assert not signature.verify_hmac_sha1(request, "wrong")

    tampered = OAuthRequest(url, http_method="POST")
    tampered.signature = form["oauth_signature"]
    tampered.params = [(k, "Administrator" if k == "roles" else v) for k, v in request.params]
    assert not signature.verify_hmac_sha1(tampered, "s3cret")


def test_lti11_params_overrides():
    params = moodle_lti11_params(resource_link_id="9", user_id="5", lis_person_contact_email_primary=DELETE)
    assert params["resource_link_id"] == "9" and params["user_id"] == "5"
    assert "lis_person_contact_email_primary" not in params
    assert all(isinstance(v, str) for v in params.values())
