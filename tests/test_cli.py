"""The admin's commands: `lti-publish issue-consumer`, `add-platform`, `rotate-key`, `purge`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from lti_xblock.store import DjangoStore

pytestmark = pytest.mark.django_db


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_issue_consumer_shows_the_secret_once_and_never_reissues_a_key():
    printed = run("lti_issue_consumer", "--name", "Moodle (school)", "--key", "school-moodle")
    consumer = DjangoStore().get_consumer("school-moodle")
    assert consumer is not None and consumer.name == "Moodle (school)"
    assert consumer.secret in printed and len(consumer.secret) >= 40
    with pytest.raises(CommandError, match="exists already"):
        run("lti_issue_consumer", "--name", "again", "--key", "school-moodle")
    random_key = run("lti_issue_consumer", "--name", "Canvas").split("Consumer key:")[1].split()[0]
    assert random_key.startswith("lti-") and DjangoStore().get_consumer(random_key) is not None


def test_add_platform_registers_and_adds_deployments():
    args = [
        "--issuer",
        "https://moodle.example",
        "--client-id",
        "aBc123",
        "--auth-url",
        "https://moodle.example/mod/lti/auth.php",
        "--token-url",
        "https://moodle.example/mod/lti/token.php",
        "--jwks-url",
        "https://moodle.example/mod/lti/certs.php",
    ]
    run("lti_add_platform", *args, "--deployment", "2")
    run("lti_add_platform", *args, "--deployment", "3", "--deployment", "2")
    registration = DjangoStore().get_registration("https://moodle.example", "aBc123")
    assert registration is not None
    assert [d.deployment_id for d in registration.deployments] == ["2", "3"]
    with pytest.raises(CommandError, match="deployment"):
        run("lti_add_platform", *args)
    with pytest.raises(CommandError, match="http"):
        run("lti_add_platform", *args[:5], "file:///etc/passwd", *args[6:], "--deployment", "1")


def test_rotate_and_retire_tool_keys():
    from lti_core.lti13.tool_keys import ToolKeySet

    keys = ToolKeySet(DjangoStore())
    first = keys.ensure_key()
    assert "active keys: 2" in run("lti_rotate_key")
    assert len(keys.jwks()["keys"]) == 2
    run("lti_rotate_key", "--retire", first.kid)
    assert [k["kid"] for k in keys.jwks()["keys"]] != [first.kid] and len(keys.jwks()["keys"]) == 1


def test_purge_drops_expired_rows():
    store = DjangoStore()
    store.consume_nonce("s", "n", 1.0, 0.0)
    assert "Purged 1 expired rows" in run("lti_purge")


def test_console_script_runs_outside_django(tmp_path: Path):
    script = Path(sys.executable).with_name("lti-publish")
    env = {**os.environ, "LTI_PUBLISH_VAR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    assert "add-platform" in subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    subprocess.run([script, "manage", "migrate", "--run-syncdb", "-v0"], env=env, check=True, cwd=tmp_path)
    done = subprocess.run(
        [script, "issue-consumer", "--name", "Moodle"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "Shared secret:" in done.stdout and "never shows the secret again" in done.stdout
    unknown = subprocess.run([script, "frobnicate"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert unknown.returncode != 0 and "unknown command" in unknown.stderr
