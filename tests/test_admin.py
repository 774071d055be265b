"""Django's admin pages for the tool's records (the workbench host; the demo mounts the admin at /admin/,
staff only): every changelist and change page renders, no secret reaches a page, a consumer's secret
can be replaced, and what an admin types follows lti_core's rules."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from lti_core.lti13.tool_keys import generate_tool_key
from lti_core.types import Consumer, Deployment, LaunchContext, Registration, RegistrationStatus, UserLink
from lti_xblock import models as m
from lti_xblock.store import DjangoStore

pytestmark = pytest.mark.django_db

SECRET = "the-consumer-secret-0123456789-never-shown"
ISSUER = "https://moodle.example"


@pytest.fixture
def records():
    store = DjangoStore()
    store.save_registration(
        Registration(
            ISSUER,
            "abc",
            f"{ISSUER}/mod/lti/auth.php",
            f"{ISSUER}/mod/lti/token.php",
            f"{ISSUER}/mod/lti/certs.php",
            (Deployment("2"), Deployment("3", "second")),
            name="Moodle",
        )
    )
    store.save_consumer(Consumer("moodle-key", SECRET, "Moodle"))
    key = generate_tool_key()
    store.save_tool_key(key)
    user = get_user_model().objects.create_user(username="sam")
    store.save_user_link(UserLink(ISSUER, "2", str(user.pk)))
    store.save_launch_context(LaunchContext(ISSUER, "2", str(user.pk), "link-1", updated_at=1_700_000_000.0))
    return {"key": key, "user": user}


def secrets_in(text: str, records) -> list[str]:
    pem = records["key"].private_pem
    middle = pem.splitlines()[5]
    return [s for s in (SECRET, middle, "PRIVATE KEY", "private_pem") if s in text]


MODELS = ("ltiregistration", "lticonsumer", "ltitoolkey", "ltiuserlink", "ltilaunchcontext")


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_change_pages_render_without_secrets(admin_client, records, model):
    listed = admin_client.get(f"/admin/lti_xblock/{model}/")
    assert listed.status_code == 200
    text = listed.content.decode()
    assert secrets_in(text, records) == []
    pk = (
        getattr(
            m,
            {
                "ltiregistration": "LtiRegistration",
                "lticonsumer": "LtiConsumer",
                "ltitoolkey": "LtiToolKey",
                "ltiuserlink": "LtiUserLink",
                "ltilaunchcontext": "LtiLaunchContext",
            }[model],
        )
        .objects.get()
        .pk
    )
    changed = admin_client.get(f"/admin/lti_xblock/{model}/{pk}/change/")
    assert changed.status_code == 200
    assert secrets_in(changed.content.decode(), records) == []


def test_registration_page_lists_its_deployments(admin_client, records):
    registration = m.LtiRegistration.objects.get()
    page = admin_client.get(f"/admin/lti_xblock/ltiregistration/{registration.pk}/change/").content.decode()
    assert 'value="2"' in page and 'value="3"' in page and 'value="second"' in page
    listed = admin_client.get("/admin/lti_xblock/ltiregistration/").content.decode()
    assert "2, 3" in listed


def test_read_only_records_cannot_be_added_changed_or_deleted(admin_client, records):
    for model in ("ltitoolkey", "ltiuserlink", "ltilaunchcontext"):
        assert admin_client.get(f"/admin/lti_xblock/{model}/add/").status_code == 403
    key = m.LtiToolKey.objects.get()
    assert admin_client.post(f"/admin/lti_xblock/ltitoolkey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    page = admin_client.get(f"/admin/lti_xblock/ltitoolkey/{key.pk}/change/").content.decode()
    assert key.kid in page and "active" in page


def consumer_form(**changes: str) -> dict[str, str]:
    form = {"name": "Moodle", "enabled": "on", "new_secret": ""}
    form.update(changes)
    return form


def test_a_consumers_secret_is_only_replaced(admin_client, records):
    consumer = m.LtiConsumer.objects.get()
    url = f"/admin/lti_xblock/lticonsumer/{consumer.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="new_secret"' in page and 'type="password"' in page and SECRET not in page
    # Empty: the secret stays; the name and state change.
    response = admin_client.post(url, consumer_form(name="Moodle (school)", enabled=""))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert DjangoStore().get_consumer("moodle-key") == Consumer("moodle-key", SECRET, "Moodle (school)", False)
    # Too short: refused, nothing changed, and the typed secret is not sent back.
    refused = admin_client.post(url, consumer_form(new_secret="short-one"))
    assert refused.status_code == 200 and "at least 20 characters" in refused.content.decode()
    assert "short-one" not in refused.content.decode()
    new = "a-brand-new-shared-secret-0123456789"
    assert admin_client.post(url, consumer_form(new_secret=new)).status_code == 302
    assert DjangoStore().get_consumer("moodle-key").secret == new
    after = admin_client.get(url).content.decode() + admin_client.get("/admin/lti_xblock/lticonsumer/").content.decode()
    assert new not in after and SECRET not in after


def test_a_consumer_added_in_the_admin_needs_a_secret(admin_client):
    form = {"key": "canvas-key", "name": "Canvas", "enabled": "on", "new_secret": ""}
    refused = admin_client.post("/admin/lti_xblock/lticonsumer/add/", form)
    assert refused.status_code == 200 and "needs a shared secret" in refused.content.decode()
    bad_key = admin_client.post("/admin/lti_xblock/lticonsumer/add/", {**form, "key": "a key", "new_secret": "x" * 30})
    assert bad_key.status_code == 200 and m.LtiConsumer.objects.count() == 0
    added = admin_client.post("/admin/lti_xblock/lticonsumer/add/", {**form, "new_secret": "y" * 30})
    assert added.status_code == 302
    assert DjangoStore().get_consumer("canvas-key") == Consumer("canvas-key", "y" * 30, "Canvas", True)


def registration_form(**changes: str) -> dict[str, str]:
    form = {
        "issuer": "HTTPS://Moodle.Example/",
        "client_id": "new-client",
        "name": "",
        "status": "pending",
        "auth_login_url": "HTTPS://MOODLE.example/mod/lti/auth.php",
        "auth_token_url": "https://moodle.example/mod/lti/token.php",
        "key_set_url": "https://moodle.example/mod/lti/certs.php",
        "deployments-TOTAL_FORMS": "1",
        "deployments-INITIAL_FORMS": "0",
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000",
        "deployments-0-deployment_id": "5",
        "deployments-0-label": "",
    }
    form.update(changes)
    return form


def test_a_registration_added_in_the_admin_is_normalised(admin_client, records):
    response = admin_client.post("/admin/lti_xblock/ltiregistration/add/", registration_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = DjangoStore().get_registration(ISSUER, "new-client")
    assert saved is not None and saved.status is RegistrationStatus.PENDING
    assert saved.auth_login_url == f"{ISSUER}/mod/lti/auth.php" and saved.deployments == (Deployment("5"),)
    # The same platform with a trailing slash is the same registration: refused as a duplicate.
    again = admin_client.post("/admin/lti_xblock/ltiregistration/add/", registration_form(issuer=f"{ISSUER}/"))
    assert again.status_code == 200 and m.LtiRegistration.objects.filter(client_id="new-client").count() == 1
    bad = admin_client.post(
        "/admin/lti_xblock/ltiregistration/add/", registration_form(issuer="ftp://x", client_id="c2")
    )
    assert bad.status_code == 200 and "not an http or https address" in bad.content.decode()
    assert not m.LtiRegistration.objects.filter(client_id="c2").exists()


def test_the_admin_is_for_staff_only(client, records):
    assert client.get("/admin/lti_xblock/lticonsumer/").status_code == 302
    user = get_user_model().objects.create_user(username="learner", password="pw-0123456789")
    client.force_login(user)
    response = client.get("/admin/lti_xblock/lticonsumer/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
