"""LTI Dynamic Registration, the tool's side, as plain data: the initiation, the platform's
configuration, the tool's registration request, the platform's answer, and what is saved."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from lti_core import pages
from lti_core.errors import LtiError
from lti_core.http import HttpResponse
from lti_core.memory import MemoryStore
from lti_core.registration import (
    PLATFORM_CONFIGURATION,
    TOOL_CONFIGURATION,
    ToolDescription,
    build_configuration_request,
    build_registration_request,
    initial_status,
    merged_registration,
    parse_platform_configuration,
    parse_registration_initiation,
    parse_registration_response,
    save_dynamic_registration,
    set_registration_status,
)
from lti_core.types import Deployment, Registration, RegistrationStatus

CONFIG_URL = "https://moodle.example/mod/lti/openid-configuration.php"
AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOOL = ToolDescription(
    name="Open edX",
    description="Published content",
    initiate_login_uri="https://tool.example/lti_publish/lti13/login",
    redirect_uri="https://tool.example/lti_publish/lti13/launch",
    target_link_uri="https://tool.example/lti_publish/",
    jwks_uri="https://tool.example/lti_publish/lti13/jwks",
    logo_uri="https://tool.example/logo.png",
)


def moodle_configuration(**changes: Any) -> dict[str, Any]:
    document = {
        "issuer": "https://moodle.example",
        "authorization_endpoint": "https://moodle.example/mod/lti/auth.php",
        "token_endpoint": "https://moodle.example/mod/lti/token.php",
        "jwks_uri": "https://moodle.example/mod/lti/certs.php",
        "registration_endpoint": "https://moodle.example/mod/lti/openid-registration.php",
        "scopes_supported": [AGS_SCORE, NRPS, "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem", "openid"],
        PLATFORM_CONFIGURATION: {
            "product_family_code": "moodle",
            "version": "4.5",
            "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}, "odd"],
        },
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not None}


def ok(document: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (("Content-Type", "application/json"),), json.dumps(document).encode())


def refusal(call: Any, *args: Any) -> LtiError:
    with pytest.raises(LtiError) as caught:
        call(*args)
    assert 400 <= caught.value.status < 500
    return caught.value


PLATFORM = parse_platform_configuration(ok(moodle_configuration()), CONFIG_URL)


# -- the initiation -------------------------------------------------------------------------------


def test_initiation_reads_the_configuration_url_and_token():
    initiation = parse_registration_initiation({"openid_configuration": CONFIG_URL, "registration_token": "a.b.c"})
    assert (initiation.openid_configuration, initiation.registration_token) == (CONFIG_URL, "a.b.c")
    assert parse_registration_initiation({"openid_configuration": "http://127.0.0.1:8/c"}).registration_token == ""


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "openid_configuration_missing"),
        ({"openid_configuration": ""}, "openid_configuration_missing"),
        ({"openid_configuration": "file:///etc/passwd"}, "openid_configuration_invalid"),
        ({"openid_configuration": "javascript:alert(1)"}, "openid_configuration_invalid"),
        ({"openid_configuration": "https://"}, "openid_configuration_invalid"),
        ({"openid_configuration": "https://user:pw@moodle.example/c"}, "openid_configuration_invalid"),
        ({"openid_configuration": " https://moodle.example/c"}, "openid_configuration_invalid"),
        ({"openid_configuration": "https://moodle.example/c\n"}, "openid_configuration_invalid"),
        ({"openid_configuration": "https://moodle.example:99999/c"}, "openid_configuration_invalid"),
        ({"openid_configuration": "https://moodle.example/" + "a" * 2048}, "openid_configuration_invalid"),
        ({"openid_configuration": CONFIG_URL, "registration_token": "a" * 8193}, "registration_token_invalid"),
        ({"openid_configuration": CONFIG_URL, "registration_token": "a b"}, "registration_token_invalid"),
        ({"openid_configuration": CONFIG_URL, "registration_token": "a\r\nX-Evil: 1"}, "registration_token_invalid"),
    ],
)
def test_initiation_refusals(params, reason):
    assert refusal(parse_registration_initiation, params).reason == reason


def test_configuration_request_carries_the_token_as_bearer_and_asks_for_json():
    request = build_configuration_request(parse_registration_initiation({"openid_configuration": CONFIG_URL}))
    assert (request.method, request.url, request.header("Accept")) == ("GET", CONFIG_URL, "application/json")
    assert request.header("Authorization") is None
    initiation = parse_registration_initiation({"openid_configuration": CONFIG_URL, "registration_token": "t.o.k"})
    assert build_configuration_request(initiation).header("Authorization") == "Bearer t.o.k"


# -- the platform's configuration -----------------------------------------------------------------


def test_configuration_is_read():
    assert PLATFORM.issuer == "https://moodle.example"
    assert PLATFORM.registration_endpoint.endswith("/openid-registration.php")
    assert PLATFORM.product_family_code == "moodle" and PLATFORM.version == "4.5"
    assert PLATFORM.messages_supported == ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")
    assert AGS_SCORE in PLATFORM.scopes_supported
    # A space-separated scope string reads the same; a missing platform part is no refusal.
    spaced = moodle_configuration(scopes_supported=f"{AGS_SCORE} {NRPS}", **{PLATFORM_CONFIGURATION: None})
    platform = parse_platform_configuration(ok(spaced), CONFIG_URL)
    assert platform.scopes_supported == (AGS_SCORE, NRPS) and platform.product_family_code == ""


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (ok(moodle_configuration(), 401), "registration_configuration_unavailable"),
        (ok(moodle_configuration(), 500), "registration_configuration_unavailable"),
        (ok(moodle_configuration(), 302), "registration_configuration_unavailable"),
        (HttpResponse(200, (), b"<html>"), "registration_configuration_invalid"),
        (HttpResponse(200, (), b"\xff\xfe"), "registration_configuration_invalid"),
        (HttpResponse(200, (), b"[" * 100_000), "registration_configuration_invalid"),
        (ok([moodle_configuration()]), "registration_configuration_invalid"),
        (ok(moodle_configuration(issuer=None)), "registration_configuration_incomplete"),
        (ok(moodle_configuration(authorization_endpoint="")), "registration_configuration_incomplete"),
        (ok(moodle_configuration(token_endpoint=None)), "registration_configuration_incomplete"),
        (ok(moodle_configuration(jwks_uri=None)), "registration_configuration_incomplete"),
        (ok(moodle_configuration(registration_endpoint=None)), "registration_configuration_incomplete"),
        (ok(moodle_configuration(issuer=["https://moodle.example"])), "registration_configuration_invalid"),
        (ok(moodle_configuration(issuer="moodle.example")), "registration_configuration_invalid"),
        (ok(moodle_configuration(issuer="https://evil.example")), "registration_issuer_mismatch"),
        (ok(moodle_configuration(issuer="http://moodle.example")), "registration_issuer_mismatch"),
        (ok(moodle_configuration(issuer="https://moodle.example:8443")), "registration_issuer_mismatch"),
        (ok(moodle_configuration(issuer="https://moodle.example.evil.example")), "registration_issuer_mismatch"),
        (ok(moodle_configuration(jwks_uri="file:///etc/passwd")), "registration_configuration_invalid"),
        (ok(moodle_configuration(registration_endpoint="gopher://x")), "registration_configuration_invalid"),
        (ok(moodle_configuration(authorization_endpoint=7)), "registration_configuration_invalid"),
    ],
)
def test_configuration_refusals(response, reason):
    error = refusal(parse_platform_configuration, response, CONFIG_URL)
    assert error.reason == reason
    if reason == "registration_configuration_unavailable":
        assert str(response.status) in error.detail


def test_issuer_with_a_path_at_the_same_origin_is_accepted():
    document = moodle_configuration(issuer="https://MOODLE.example:443/school")
    assert parse_platform_configuration(ok(document), CONFIG_URL).issuer == "https://MOODLE.example:443/school"


# -- the tool's registration ----------------------------------------------------------------------


def test_registration_request_is_the_spec_s_client_registration():
    request = build_registration_request(PLATFORM, TOOL, "t.o.k")
    assert (request.method, request.url) == ("POST", PLATFORM.registration_endpoint)
    assert request.header("Authorization") == "Bearer t.o.k"
    assert request.header("Content-Type") == "application/json"
    body = json.loads(request.body)
    lti = body.pop(TOOL_CONFIGURATION)
    assert body == {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": TOOL.initiate_login_uri,
        "redirect_uris": [TOOL.redirect_uri],
        "client_name": "Open edX",
        "jwks_uri": TOOL.jwks_uri,
        "token_endpoint_auth_method": "private_key_jwt",
        # Only what the platform supports, of what the tool uses: Moodle's lineitem, score and NRPS.
        "scope": f"https://purl.imsglobal.org/spec/lti-ags/scope/lineitem {AGS_SCORE} {NRPS}",
        "logo_uri": "https://tool.example/logo.png",
    }
    assert lti == {
        "domain": "tool.example",
        "target_link_uri": TOOL.target_link_uri,
        "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
        "messages": [
            {"type": "LtiResourceLinkRequest", "target_link_uri": TOOL.target_link_uri},
            {"type": "LtiDeepLinkingRequest", "target_link_uri": TOOL.target_link_uri},
        ],
        "description": "Published content",
    }
    assert build_registration_request(PLATFORM, TOOL, "").header("Authorization") is None


def test_no_scopes_asked_of_a_platform_that_lists_none():
    platform = parse_platform_configuration(ok(moodle_configuration(scopes_supported=None)), CONFIG_URL)
    assert json.loads(build_registration_request(platform, TOOL, "").body)["scope"] == ""


# -- the platform's answer ------------------------------------------------------------------------


def moodle_answer(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "client_id": "hLJwVs7XbXQcmBS",
        "application_type": "web",
        TOOL_CONFIGURATION: {"deployment_id": "12", "version": "1.3.0"},
    }
    document.update(changes)
    return document


def test_registration_response_makes_the_registration():
    registration = parse_registration_response(ok(moodle_answer()), PLATFORM, RegistrationStatus.PENDING)
    assert registration == Registration(
        issuer="https://moodle.example",
        client_id="hLJwVs7XbXQcmBS",
        auth_login_url=PLATFORM.authorization_endpoint,
        auth_token_url=PLATFORM.token_endpoint,
        key_set_url=PLATFORM.jwks_uri,
        deployments=(Deployment("12"),),
        name="moodle",
        status=RegistrationStatus.PENDING,
    )
    # Numbers (some platforms' ids) are read as text; no deployment id: no deployment.
    numeric = moodle_answer(client_id=10000000000042, **{TOOL_CONFIGURATION: {"deployment_id": 3}})
    registration = parse_registration_response(ok(numeric), PLATFORM, RegistrationStatus.ACTIVE)
    assert (registration.client_id, registration.deployments) == ("10000000000042", (Deployment("3"),))
    bare = parse_registration_response(ok({"client_id": "c"}), PLATFORM, RegistrationStatus.ACTIVE)
    assert bare.deployments == ()


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (ok({"error": "invalid_client_metadata"}, 400), "registration_refused"),
        (ok({"error": "x"}, 401), "registration_refused"),
        (ok(moodle_answer(), 500), "registration_refused"),
        (HttpResponse(201, (), b"not json"), "registration_response_invalid"),
        (ok("client_id"), "registration_response_invalid"),
        (ok(moodle_answer(client_id=None)), "registration_client_id_missing"),
        (ok(moodle_answer(client_id="")), "registration_client_id_missing"),
        (ok(moodle_answer(client_id=True)), "registration_client_id_missing"),
        (ok(moodle_answer(client_id=["a"])), "registration_client_id_missing"),
        (ok(moodle_answer(client_id=" a")), "registration_client_id_missing"),
        (ok(moodle_answer(client_id="a\nb")), "registration_client_id_missing"),
        (ok(moodle_answer(client_id="a" * 256)), "registration_client_id_missing"),
    ],
)
def test_registration_response_refusals(response, reason):
    error = refusal(parse_registration_response, response, PLATFORM, RegistrationStatus.PENDING)
    assert error.reason == reason
    if reason == "registration_refused":
        assert str(response.status) in error.detail


def test_initial_status_is_pending_unless_the_host_says_otherwise():
    assert initial_status(True) is RegistrationStatus.PENDING
    assert initial_status(False) is RegistrationStatus.ACTIVE


# -- what is saved ----------------------------------------------------------------------------------


def registration(client_id: str = "c1", *deployments: str, **changes: Any) -> Registration:
    base = Registration("https://moodle.example", client_id, "https://a", "https://t", "https://k")
    return replace(base, deployments=tuple(Deployment(d) for d in deployments), **changes)


def test_registering_again_updates_and_keeps_the_admin_s_decision():
    store = MemoryStore()
    save_dynamic_registration(store, registration("c1", "2", status=RegistrationStatus.PENDING))
    set_registration_status(store, "https://moodle.example", "c1", RegistrationStatus.ACTIVE)
    again = registration("c1", "3", status=RegistrationStatus.PENDING, key_set_url="https://k2")
    saved = save_dynamic_registration(store, again)
    assert saved.status is RegistrationStatus.ACTIVE and saved.key_set_url == "https://k2"
    assert [d.deployment_id for d in saved.deployments] == ["2", "3"]
    # Another client_id of the same issuer (Moodle: another tool type) is another registration.
    save_dynamic_registration(store, registration("c2", "4", status=RegistrationStatus.PENDING))
    assert [(r.client_id, r.status) for r in store.list_registrations()] == [
        ("c1", RegistrationStatus.ACTIVE),
        ("c2", RegistrationStatus.PENDING),
    ]
    assert store.get_registration("https://moodle.example", "c1") == saved


def test_merging_with_nothing_is_the_new_registration_and_a_disabled_one_stays_disabled():
    new = registration("c1", "2", status=RegistrationStatus.PENDING)
    assert merged_registration(new, None) == new
    disabled = registration("c1", "2", status=RegistrationStatus.DISABLED)
    assert merged_registration(new, disabled).status is RegistrationStatus.DISABLED


def test_status_of_an_unknown_registration_is_refused():
    assert refusal(set_registration_status, MemoryStore(), "https://x", "c", RegistrationStatus.ACTIVE).reason == (
        "unknown_platform"
    )


def test_close_page_posts_to_the_issuer_origin_and_says_what_happened():
    page = pages.registration_complete_page(registration("c1", "2", status=RegistrationStatus.PENDING))
    assert page.platform_origin == "https://moodle.example" and page.close_subject == "org.imsglobal.lti.close"
    assert page.message == pages.REGISTRATION_PENDING and page.status == 200
    active = pages.registration_complete_page(registration(issuer="https://M.example:443/x"))
    assert active.platform_origin == "https://m.example" and active.message == pages.REGISTRATION_ACTIVE
