"""The admins' commands: `lti-publish platforms`, `consumers`, `links`, `config` (and the older names
`add-platform`, `issue-consumer`, `registrations`), each with bad input: one line, exit 1 or 2, never a
traceback."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from lti_core.types import LaunchContext, RegistrationStatus, UserLink
from lti_xblock.store import DjangoStore
from tests.test_cli import lti_publish

pytestmark = pytest.mark.django_db

MOODLE = [
    "--issuer",
    "https://Moodle.example/",
    "--client-id",
    "aBc123",
    "--auth-url",
    "https://moodle.example/mod/lti/auth.php",
    "--token-url",
    "https://moodle.example/mod/lti/token.php",
    "--jwks-url",
    "https://moodle.example/mod/lti/certs.php",
]
ISSUER = "https://moodle.example"


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def refused(match: str, command: str, *args: str) -> None:
    with pytest.raises(CommandError, match=match):
        run(command, *args)


# -- platforms -----------------------------------------------------------------------------------


def test_platforms_add_normalises_the_issuer_and_updates_one_registration():
    assert "Registered https://moodle.example  client_id=aBc123" in run(
        "lti_platforms", "add", *MOODLE, "--deployment", "2"
    )
    run("lti_platforms", "add", *MOODLE[:1], "https://moodle.example", *MOODLE[2:], "--deployment", "3")
    run("lti_add_platform", *MOODLE, "--deployment", "4", "--name", "School")  # the older name
    [registration] = DjangoStore().list_registrations()
    assert (registration.issuer, registration.client_id, registration.name) == (ISSUER, "aBc123", "School")
    assert [d.deployment_id for d in registration.deployments] == ["2", "3", "4"]
    listed = run("lti_platforms", "list")
    assert listed == f"{ISSUER}  client_id=aBc123  status=active  deployments=2, 3, 4  name=School\n"
    shown = run("lti_platforms", "show", "https://moodle.example/", "aBc123")
    assert "https://moodle.example/mod/lti/certs.php" in shown and "accepts new deployments:    off" in shown


def test_platforms_add_refuses_bad_input_and_saves_nothing():
    refused("deployment", "lti_platforms", "add", *MOODLE)
    refused(
        "issuer_invalid", "lti_platforms", "add", *MOODLE[:1], "ftp://moodle.example", *MOODLE[2:], "--deployment", "1"
    )
    refused(
        "auth_login_url_invalid",
        "lti_platforms",
        "add",
        *MOODLE[:5],
        "file:///etc/passwd",
        *MOODLE[6:],
        "--deployment",
        "1",
    )
    refused("deployment_id_invalid", "lti_platforms", "add", *MOODLE, "--deployment", " 2")
    refused("client_id_invalid", "lti_platforms", "add", *MOODLE[:3], "", *MOODLE[4:], "--deployment", "1")
    refused("required", "lti_platforms", "add", "--issuer", ISSUER)
    assert DjangoStore().list_registrations() == []


def test_platforms_status_deployments_and_delete():
    run("lti_platforms", "add", *MOODLE, "--deployment", "2")
    assert "is now disabled" in run("lti_platforms", "disable", ISSUER, "aBc123")
    assert DjangoStore().get_registration(ISSUER, "aBc123").status is RegistrationStatus.DISABLED
    assert "is now active" in run("lti_platforms", "enable", ISSUER + "/", "aBc123")
    run("lti_platforms", "disable", ISSUER, "aBc123")
    assert "is now active" in run("lti_platforms", "approve", ISSUER, "aBc123")
    assert "deployments=2, 7, 8" in run("lti_platforms", "deployments", "add", ISSUER, "aBc123", "7", "8")
    assert "deployments=2, 8" in run("lti_platforms", "deployments", "remove", ISSUER, "aBc123", "7")
    refused("unknown_deployment", "lti_platforms", "deployments", "remove", ISSUER, "aBc123", "7")
    assert "(and any new one)" in run("lti_platforms", "accept-new-deployments", ISSUER, "aBc123", "on")
    assert DjangoStore().get_registration(ISSUER, "aBc123").any_deployment
    run("lti_platforms", "accept-new-deployments", ISSUER, "aBc123", "off")
    assert not DjangoStore().get_registration(ISSUER, "aBc123").any_deployment
    refused("invalid choice", "lti_platforms", "accept-new-deployments", ISSUER, "aBc123", "maybe")
    for action in (["show"], ["disable"], ["enable"], ["approve"], ["delete"], ["deployments", "add"]):
        refused("unknown_platform", "lti_platforms", *action, ISSUER, "nobody", *(["1"] if "add" in action else []))
    assert "Deleted https://moodle.example (client_id aBc123)" in run("lti_platforms", "delete", ISSUER, "aBc123")
    assert (
        DjangoStore().list_registrations() == []
        and run("lti_platforms", "list") == "No LTI 1.3 platform is registered.\n"
    )


def test_registrations_is_platforms_list_approve_disable():
    run("lti_platforms", "add", *MOODLE, "--deployment", "2")
    assert run("lti_registrations", "list") == run("lti_platforms", "list")
    assert "is now disabled" in run("lti_registrations", "disable", ISSUER, "aBc123")
    assert "is now active" in run("lti_registrations", "approve", ISSUER, "aBc123")
    refused("unknown_platform", "lti_registrations", "approve", ISSUER, "nobody")
    refused("invalid choice", "lti_registrations", "delete", ISSUER, "aBc123")


# -- consumers -----------------------------------------------------------------------------------


def test_consumers_issue_list_disable_enable_delete_and_never_show_the_secret_again():
    printed = run("lti_consumers", "issue", "--name", "Moodle (school)", "--key", "school")
    secret = DjangoStore().get_consumer("school").secret
    assert f"Shared secret:   {secret}" in printed and "never shows the secret again" in printed
    random_key = run("lti_issue_consumer", "--name", "Canvas").split("Consumer key:")[1].split()[0]
    listed = run("lti_consumers", "list")
    assert listed == f"{random_key}  enabled  name=Canvas\nschool  enabled  name=Moodle (school)\n"
    assert "school  disabled" in run("lti_consumers", "disable", "school")
    assert not DjangoStore().get_consumer("school").enabled
    assert "school  enabled" in run("lti_consumers", "enable", "school")
    outputs = [run("lti_consumers", "list"), run("lti_consumers", "disable", "school")]
    assert not any(secret in output for output in outputs)
    refused("consumer_exists", "lti_consumers", "issue", "--name", "again", "--key", "school")
    refused("exists already", "lti_issue_consumer", "--name", "again", "--key", "school")
    refused("consumer_key_invalid", "lti_consumers", "issue", "--name", "x", "--key", "a key")
    assert run("lti_consumers", "delete", "school") == "Deleted consumer school\n"
    for action in ("disable", "enable", "delete"):
        refused("unknown_consumer", "lti_consumers", action, "school")
    refused("required", "lti_consumers", "issue")
    run("lti_consumers", "delete", random_key)
    assert run("lti_consumers", "list") == "No LTI 1.1 consumer is issued.\n"


# -- links ---------------------------------------------------------------------------------------


def test_links_list_and_show():
    assert run("lti_links", "list") == "No user link.\n"
    store = DjangoStore()
    users = get_user_model().objects
    sam, kim = users.create_user(username="sam"), users.create_user(username="kim")
    store.save_user_link(UserLink(ISSUER, "2", str(sam.pk)))
    store.save_user_link(UserLink("moodle-key", "7", str(kim.pk)))
    store.save_launch_context(
        LaunchContext(ISSUER, "2", str(sam.pk), "link-1", context_id="course-9", updated_at=1_700_000_000.0)
    )
    listed = run("lti_links", "list").splitlines()
    assert listed == [
        f"{ISSUER}  user_id=2  ->  sam (id {sam.pk})",
        f"moodle-key  user_id=7  ->  kim (id {kim.pk})",
    ]
    assert run("lti_links", "list", "--platform", "moodle-key").splitlines() == listed[1:]
    shown = run("lti_links", "show", ISSUER, "2")
    assert shown.startswith(listed[0]) and "resource_link=link-1 context=course-9" in shown
    assert "2023-11-14 22:13 UTC" in shown
    refused("unknown_user_link", "lti_links", "show", ISSUER, "3")
    # Removing one: its identity's next launch is a first one again; the user stays.
    assert run("lti_links", "remove", ISSUER, "2") == f"Removed: {listed[0]}\n"
    assert run("lti_links", "list").splitlines() == listed[1:]
    assert users.filter(username="sam").exists()
    refused("unknown_user_link", "lti_links", "remove", ISSUER, "2")


def test_consumers_migrate_maps_a_consumer_to_an_lti13_issuer_and_back():
    run("lti_consumers", "issue", "--name", "Moodle", "--key", "moved")
    assert "moved  enabled  name=Moodle  migrated_to=https://moodle.example" in run(
        "lti_consumers", "migrate", "moved", "--to", "https://Moodle.example/"
    )
    assert DjangoStore().get_consumer("moved").migrated_to == ISSUER  # type: ignore[union-attr]
    assert "migrated_to" in run("lti_consumers", "list")
    assert "migrated_to" not in run("lti_consumers", "migrate", "moved", "--clear")
    assert DjangoStore().get_consumer("moved").migrated_to == ""  # type: ignore[union-attr]
    refused("issuer_invalid", "lti_consumers", "migrate", "moved", "--to", "not a url")
    refused("unknown_consumer", "lti_consumers", "migrate", "nobody", "--to", ISSUER)
    refused("required", "lti_consumers", "migrate", "moved")


# -- config --------------------------------------------------------------------------------------


def test_config_prints_what_to_paste_into_a_platform(settings):
    settings.LTI_PUBLISH = {"HOST": "workbench", "TOOL_BASE_URLS": ["https://lms.example.com"]}
    printed = run("lti_config")
    for line in (
        "LTI 1.1 Tool URL:                    https://lms.example.com/lti_publish/content/<content_id>/ltiaccess",
        "LTI 1.3 Initiate login URL:          https://lms.example.com/lti_publish/lti13/login",
        "LTI 1.3 Redirection URI:             https://lms.example.com/lti_publish/lti13/launch",
        "LTI 1.3 Public keyset (JWKS) URL:    https://lms.example.com/lti_publish/lti13/jwks",
        "LTI 1.3 Deep linking URL:            https://lms.example.com/lti_publish/",
        "LTI 1.3 Dynamic registration URL:    https://lms.example.com/lti_publish/lti13/register",
    ):
        assert line in printed.splitlines()
    other = run("lti_config", "--base-url", "HTTPS://Other.Example/")
    assert "https://other.example/lti_publish/lti13/login" in other and "lms.example.com" not in other
    canvas = json.loads(run("lti_config", "--canvas-json"))
    assert canvas["redirect_uris"] == ["https://lms.example.com/lti_publish/lti13/launch"]
    assert canvas["public_jwk_url"] == "https://lms.example.com/lti_publish/lti13/jwks"
    refused("unknown_content", "lti_config", "--cartridge", "no-such-content")
    refused("base_url_invalid", "lti_config", "--base-url", "ftp://x")
    refused("not allowed with", "lti_config", "--canvas-json", "--cartridge", "x")
    settings.LTI_PUBLISH = {"HOST": "workbench", "TOOL_BASE_URLS": []}
    refused("--base-url", "lti_config")


def test_config_prints_a_published_contents_cartridge(settings):
    from tests.conftest import published_content_id

    settings.LTI_PUBLISH = {"HOST": "workbench", "TOOL_BASE_URLS": ["https://lms.example.com"]}
    content_id = published_content_id()
    cartridge = run("lti_config", "--cartridge", content_id)
    assert cartridge.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert (
        f"<blti:launch_url>https://lms.example.com/lti_publish/content/{content_id}/ltiaccess</blti:launch_url>"
        in cartridge
    )


# -- the console script: usage lines, versions, exit codes, one line per refusal --------------------


def test_console_script_admin_commands(tmp_path: Path):
    var = tmp_path / "var"

    def cli(*args: str):
        return lti_publish(*args, settings="tests.settings", cwd=tmp_path, LTI_PUBLISH_VAR=str(var))

    assert cli("manage", "migrate", "--run-syncdb", "-v0").returncode == 0
    # Each run starts Django (~0.7 s): the read-only ones run side by side.
    pool = ThreadPoolExecutor(4)
    commands = ("platforms", "consumers", "links", "config", "add-platform", "issue-consumer", "registrations")
    for command, helped in zip(commands, pool.map(lambda c: cli(c, "--help"), commands), strict=True):
        assert helped.returncode == 0 and helped.stdout.startswith(f"usage: lti-publish {command} "), helped.stdout
        assert "lti_" not in helped.stdout.split("\n\n")[0]
    nested = cli("platforms", "deployments", "add", "--help")
    assert nested.stdout.startswith("usage: lti-publish platforms deployments add ")
    from lti_xblock.cli import version

    assert cli("platforms", "--version").stdout == f"{version()}\n"
    added = cli("platforms", "add", *MOODLE, "--deployment", "2")
    assert added.returncode == 0 and "https://moodle.example  client_id=aBc123" in added.stdout
    issued = cli("consumers", "issue", "--name", "Moodle", "--key", "k1")
    secret = issued.stdout.split("Shared secret:")[1].split()[0]
    listed = cli("consumers", "list")
    assert listed.returncode == 0 and "k1  enabled" in listed.stdout and secret not in listed.stdout
    bad_inputs = [
        (["platforms"], 2),
        (["platforms", "frobnicate"], 2),
        (["platforms", "deployments", "add"], 2),
        (["platforms", "deployments", "add", ISSUER, "aBc123"], 2),
        (["platforms", "accept-new-deployments", ISSUER, "aBc123", "maybe"], 2),
        (["platforms", "show", ISSUER, "nobody"], 1),
        (["platforms", "deployments", "remove", ISSUER, "aBc123", "99"], 1),
        (["platforms", "add", *MOODLE[:1], "ftp://x", *MOODLE[2:], "--deployment", "1"], 1),
        (["consumers", "disable", "nobody"], 1),
        (["consumers", "issue", "--name", "x", "--key", "k1"], 1),
        (["links", "show", "a", "b"], 1),
        (["links"], 2),
        (["config", "--base-url", "nope"], 1),
        (["config", "--cartridge"], 2),
    ]
    # None of them writes anything: they run side by side too.
    for (args, code), done in zip(bad_inputs, pool.map(lambda bad: cli(*bad[0]), bad_inputs), strict=True):
        assert done.returncode == code, (args, done.stderr)
        assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr and secret not in done.stderr
    removed = cli("platforms", "deployments", "remove", ISSUER, "aBc123", "99")
    assert removed.stderr == "CommandError: This deployment is not registered with the tool. (unknown_deployment: 99)\n"
