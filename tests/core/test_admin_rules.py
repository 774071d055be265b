"""lti_core.admin: the rules of the admins' tools (issuers and URLs normalised, registrations merged,
deployments added and removed, consumers issued, turned off and deleted)."""

from __future__ import annotations

import pytest

from lti_core import admin
from lti_core.errors import InvalidRequest, NotFound
from lti_core.memory import MemoryStore
from lti_core.registration import unknown_deployment
from lti_core.tool_config import build_lti13_tool_config
from lti_core.types import Consumer, Deployment, Registration, RegistrationStatus


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://moodle.example", "https://moodle.example"),
        ("https://moodle.example/", "https://moodle.example"),
        ("HTTPS://Moodle.Example/", "https://moodle.example"),
        ("  https://moodle.example/  ", "https://moodle.example"),
        ("https://school.example/moodle/", "https://school.example/moodle"),
        ("https://school.example/Moodle", "https://school.example/Moodle"),  # paths keep their case
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("https://canvas.instructure.com", "https://canvas.instructure.com"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
    ],
)
def test_issuers_are_kept_as_platforms_send_them(given, normal):
    assert admin.normalise_issuer(given) == normal


@pytest.mark.parametrize(
    "given",
    [
        "",
        "moodle.example",
        "ftp://moodle.example",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "https://user:pw@moodle.example",
        "https://moodle.example:99999",
        "https://moodle.example/?x=1",
        "https://moodle.example/#top",
        "https://moodle example",
        "https://moodle.example/\x00",
        "https://moodle.example/" + "x" * 2000,
    ],
)
def test_bad_issuers_are_refused_with_a_reason(given):
    with pytest.raises(InvalidRequest) as info:
        admin.normalise_issuer(given)
    assert info.value.reason == "issuer_invalid" and info.value.status == 400


def test_endpoint_urls_keep_their_path_and_query():
    assert admin.normalise_url("HTTPS://Moodle.Example/mod/lti/auth.php") == "https://moodle.example/mod/lti/auth.php"
    assert admin.normalise_url("https://lms.example/api/token/") == "https://lms.example/api/token/"
    assert admin.normalise_url("https://lms.example/") == "https://lms.example"
    assert admin.normalise_url("https://lms.example/keys?id=1") == "https://lms.example/keys?id=1"
    with pytest.raises(InvalidRequest) as info:
        admin.normalise_url("gopher://x", reason="key_set_url_invalid")
    assert info.value.reason == "key_set_url_invalid"


@pytest.mark.parametrize("bad", ["", " 2", "2 ", "a\nb", "x" * 256])
def test_identifiers_are_checked(bad):
    for rule, reason in (
        (admin.validate_client_id, "client_id_invalid"),
        (admin.validate_deployment_id, "deployment_id_invalid"),
        (admin.validate_consumer_key, "consumer_key_invalid"),
    ):
        with pytest.raises(InvalidRequest) as info:
            rule(bad)
        assert info.value.reason == reason
    with pytest.raises(InvalidRequest):
        admin.validate_consumer_key("a key")


def entry(**changes):
    values = {
        "issuer": "https://moodle.example/",
        "client_id": "abc",
        "auth_login_url": "https://moodle.example/mod/lti/auth.php",
        "auth_token_url": "https://moodle.example/mod/lti/token.php",
        "key_set_url": "https://moodle.example/mod/lti/certs.php",
        "deployment_ids": ("2",),
    }
    values.update(changes)
    return admin.ManualRegistration(**values)


def test_a_trailing_slash_updates_the_registration_never_makes_a_second():
    store = MemoryStore()
    admin.save_manual_registration(store, entry(issuer="https://moodle.example"))
    admin.save_manual_registration(store, entry(deployment_ids=("3",), key_set_url="https://moodle.example/new"))
    admin.save_manual_registration(store, entry(issuer="HTTPS://MOODLE.EXAMPLE", deployment_ids=("2",)))
    [only] = store.list_registrations()
    assert (only.issuer, only.client_id) == ("https://moodle.example", "abc")
    assert only.deployments == (Deployment("2"), Deployment("3"))
    assert only.key_set_url == "https://moodle.example/mod/lti/certs.php"


def test_a_manual_registration_keeps_the_admins_status_and_any_deployment():
    store = MemoryStore()
    store.save_registration(
        Registration(
            "https://moodle.example",
            "abc",
            "https://a",
            "https://t",
            "https://k",
            (Deployment("1", "first"),),
            name="Moodle",
            any_deployment=True,
            status=RegistrationStatus.DISABLED,
        )
    )
    saved = admin.save_manual_registration(store, entry())
    assert saved.status is RegistrationStatus.DISABLED and saved.any_deployment and saved.name == "Moodle"
    assert saved.deployments == (Deployment("1", "first"), Deployment("2"))
    assert saved.auth_login_url == "https://moodle.example/mod/lti/auth.php"
    fresh = admin.save_manual_registration(store, entry(client_id="new", name=" School "))
    assert fresh.status is RegistrationStatus.ACTIVE and not fresh.any_deployment and fresh.name == "School"


def test_bad_manual_registrations_save_nothing():
    store = MemoryStore()
    for bad in (
        entry(issuer="ftp://moodle.example"),
        entry(client_id=""),
        entry(auth_login_url="file:///etc/passwd"),
        entry(deployment_ids=("",)),
    ):
        with pytest.raises(InvalidRequest):
            admin.save_manual_registration(store, bad)
    assert store.list_registrations() == []


def test_deployments_are_added_and_removed_and_any_deployment_switched():
    store = MemoryStore()
    admin.save_manual_registration(store, entry(issuer="https://moodle.example"))
    added = admin.add_deployments(store, "https://moodle.example/", "abc", ["7", "2", "8"])
    assert [d.deployment_id for d in added.deployments] == ["2", "7", "8"]
    assert not added.has_deployment("9")
    removed = admin.remove_deployment(store, "https://moodle.example", "abc", "7")
    assert [d.deployment_id for d in removed.deployments] == ["2", "8"]
    with pytest.raises(NotFound) as info:
        admin.remove_deployment(store, "https://moodle.example", "abc", "7")
    assert info.value.reason == "unknown_deployment"
    opened = admin.set_accept_new_deployments(store, "https://moodle.example", "abc", True)
    assert opened.any_deployment and opened.has_deployment("9")
    assert admin.deployment_summary(opened) == "2, 8 (and any new one)"
    closed = admin.set_accept_new_deployments(store, "https://moodle.example", "abc", False)
    assert not closed.has_deployment("9") and admin.deployment_summary(closed) == "2, 8"
    stored = store.get_registration("https://moodle.example", "abc")
    assert stored == closed
    with pytest.raises(NotFound) as info:
        admin.add_deployments(store, "https://moodle.example", "other", ["1"])
    assert info.value.reason == "unknown_platform"
    with pytest.raises(InvalidRequest):
        admin.add_deployments(store, "https://moodle.example", "abc", [" 1"])


def test_registrations_made_elsewhere_are_found_as_stored():
    """A dynamic registration keeps the issuer the platform sent; admins find it as typed or normalised."""
    store = MemoryStore()
    odd = Registration("https://platform.example/lti/", "c", "https://a", "https://t", "https://k")
    store.save_registration(odd)
    assert admin.find_registration(store, "https://platform.example/lti/", "c") == odd
    store.save_registration(Registration("https://platform.example", "d", "https://a", "https://t", "https://k"))
    assert admin.find_registration(store, "https://platform.example/", "d").client_id == "d"
    with pytest.raises(NotFound):
        admin.find_registration(store, "not a url", "c")


def test_consumers_are_issued_once_disabled_enabled_and_deleted():
    store = MemoryStore()
    issued = admin.issue_consumer(store, "Moodle", "school")
    assert issued.key == "school" and len(issued.secret) >= 40 and issued.enabled
    assert store.get_consumer("school") == issued
    with pytest.raises(InvalidRequest) as info:
        admin.issue_consumer(store, "again", "school")
    assert info.value.reason == "consumer_exists" and issued.secret not in str(info.value)
    random = admin.issue_consumer(store, "Canvas")
    assert random.key.startswith("lti-") and random.secret != issued.secret
    off = admin.set_consumer_enabled(store, "school", False)
    assert off == Consumer("school", issued.secret, "Moodle", enabled=False) and store.get_consumer("school") == off
    assert admin.set_consumer_enabled(store, "school", True).enabled
    summary = admin.consumer_summary(off)
    assert issued.secret not in repr(summary) and not hasattr(summary, "secret")
    admin.delete_consumer(store, "school")
    assert store.get_consumer("school") is None
    for action in (
        lambda: admin.delete_consumer(store, "school"),
        lambda: admin.set_consumer_enabled(store, "school", True),
    ):
        with pytest.raises(NotFound) as info:
            action()
        assert info.value.reason == "unknown_consumer"


def test_unknown_deployment_names_the_deployment():
    error = unknown_deployment("42")
    assert (error.reason, error.status) == ("unknown_deployment", 403)
    assert error.text() == "This deployment of the tool is not registered: deployment ID “42”."
    # Translated as a catalog entry first, then the ID put in: the ID never goes through gettext.
    assert error.text(lambda msgid: msgid.replace("This deployment", "Ce déploiement")).startswith("Ce déploiement")
    assert "%(deployment_id)s" in error.message and error.arguments == {"deployment_id": "42"}
    for unshowable in (None, 42, "", "x" * 300, "a\x00b"):
        error = unknown_deployment(unshowable)
        assert (
            error.reason == "unknown_deployment" and error.message == "This deployment of the tool is not registered."
        )


def test_canvas_config_redirects_to_the_tools_launch_url():
    config = build_lti13_tool_config(
        title="T",
        description="D",
        login_url="https://lms.example/lti_publish/lti13/login",
        redirect_uri="https://lms.example/lti_publish/lti13/launch",
        target_link_uri="https://lms.example/lti_publish/content/x/",
        jwks_url="https://lms.example/lti_publish/lti13/jwks",
    )
    assert config["redirect_uris"] == ["https://lms.example/lti_publish/lti13/launch"]
    assert config["target_link_uri"] == "https://lms.example/lti_publish/content/x/"
    assert config["oidc_initiation_url"] == "https://lms.example/lti_publish/lti13/login"
