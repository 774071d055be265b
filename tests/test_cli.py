"""The admin's commands: `lti-publish issue-consumer`, `add-platform`, `keys`, `purge`."""

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


def test_keys_list_rotate_and_retire():
    from lti_core.lti13.tool_keys import ToolKeySet

    keys = ToolKeySet(DjangoStore())
    assert "No tool key yet" in run("lti_keys", "list")
    first = keys.ensure_key()
    (line,) = run("lti_keys", "list").splitlines()
    assert line.startswith(first.kid) and "retires=-" in line and line.endswith("state=signing")
    assert "older keys leave in 1.5 hours" in run("lti_keys", "rotate", "--overlap", "1.5")
    second = keys.ensure_key()
    assert [k["kid"] for k in keys.jwks()["keys"]] == [second.kid, first.kid]
    listed = run("lti_keys", "list").splitlines()
    assert listed[0].startswith(second.kid) and listed[0].endswith("state=signing")
    assert listed[1].startswith(first.kid) and "retires=20" in listed[1] and listed[1].endswith("state=published")
    assert "PRIVATE" not in "".join(listed)
    run("lti_keys", "retire", first.kid)
    assert [k["kid"] for k in keys.jwks()["keys"]] == [second.kid]
    with pytest.raises(CommandError, match=f"{second.kid} is the only signing key"):
        run("lti_keys", "retire", second.kid)
    with pytest.raises(CommandError, match="no published tool key has the kid nosuchkid"):
        run("lti_keys", "retire", "nosuchkid")
    with pytest.raises(CommandError):
        run("lti_keys", "rotate", "--overlap", "-3")


def test_purge_drops_expired_rows():
    store = DjangoStore()
    store.consume_nonce("s", "n", 1.0, 0.0)
    assert "Purged 1 expired rows" in run("lti_purge")


SCRIPT = Path(sys.executable).with_name("lti-publish")
REPO = Path(__file__).resolve().parent.parent
NO_SETTINGS = (
    "lti-publish: set DJANGO_SETTINGS_MODULE to your site's settings (in Open edX: lms.envs.production), "
    "or run it as ./manage.py lms {}\n"
)


def lti_publish(*args: str, settings: str | None, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, run from ``cwd`` with exactly the settings module given (None: unset)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    if settings is not None:
        # The checkout's tests.settings (and the demo's settings it builds on) are not installed.
        environ.update(DJANGO_SETTINGS_MODULE=settings, PYTHONPATH=str(REPO))
    return subprocess.run([SCRIPT, *args], env={**environ, **env}, capture_output=True, text=True, cwd=cwd)


def test_console_script_runs_with_the_settings_it_is_given(tmp_path: Path):
    var = tmp_path / "var"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return lti_publish(*args, settings="tests.settings", cwd=tmp_path, LTI_PUBLISH_VAR=str(var))

    assert run("manage", "migrate", "--run-syncdb", "-v0").returncode == 0
    assert (var / "lti_publish.db").is_file()
    done = run("issue-consumer", "--name", "Moodle")
    assert done.returncode == 0, done.stderr
    assert "Shared secret:" in done.stdout and "never shows the secret again" in done.stdout
    key = done.stdout.split("Consumer key:")[1].split()[0]
    again = run("issue-consumer", "--name", "Moodle", "--key", key)
    assert again.returncode == 1 and "exists already" in again.stderr
    # A command's own help names it as lti-publish does, not as the Django command behind it.
    helped = run("add-platform", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: lti-publish add-platform ")
    assert "--issuer" in helped.stdout and "lti_add_platform" not in helped.stdout
    missing = lti_publish("purge", settings="no_such_settings", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("lti-publish: cannot load the settings DJANGO_SETTINGS_MODULE=no_such_settings")


def test_keys_errors_are_one_line_without_a_traceback(tmp_path: Path):
    var = tmp_path / "var"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return lti_publish(*args, settings="tests.settings", cwd=tmp_path, LTI_PUBLISH_VAR=str(var))

    assert run("manage", "migrate", "--run-syncdb", "-v0").returncode == 0
    retired = run("keys", "retire", "nosuchkid")
    assert (retired.returncode, retired.stdout) == (1, "")
    assert retired.stderr.count("\n") == 1 and "nosuchkid" in retired.stderr and "Traceback" not in retired.stderr
    rotated = run("keys", "rotate", "--overlap", "2")
    assert rotated.returncode == 0 and "older keys leave in 2 hours" in rotated.stdout


@pytest.mark.parametrize(
    ("args", "django_command"),
    [
        (["issue-consumer", "--name", "Moodle"], "lti_issue_consumer"),
        (["add-platform", "--help"], "lti_add_platform"),
        (["keys", "list"], "lti_keys"),
        (["purge"], "lti_purge"),
        (["manage", "migrate"], "<command>"),
    ],
)
def test_without_settings_it_says_which_and_writes_nothing(tmp_path: Path, args: list[str], django_command: str):
    """No fallback to the demo's settings (once: an empty SQLite database here, then "no such table")."""
    refused = lti_publish(*args, settings=None, cwd=tmp_path)
    assert (refused.returncode, refused.stdout, refused.stderr) == (2, "", NO_SETTINGS.format(django_command))
    assert list(tmp_path.iterdir()) == []


def test_help_version_and_unknown_commands_need_no_settings(tmp_path: Path):
    from importlib.metadata import version

    for flag in ("--help", "-h", "help"):
        helped = lti_publish(flag, settings=None, cwd=tmp_path)
        assert helped.returncode == 0 and helped.stdout.startswith("usage: lti-publish COMMAND")
        for command in ("add-platform", "issue-consumer", "keys", "purge", "manage"):
            assert f"\n  {command} " in helped.stdout
        assert "lti_issue_consumer" not in helped.stdout and "DJANGO_SETTINGS_MODULE" in helped.stdout
    shown = lti_publish("--version", settings=None, cwd=tmp_path)
    assert (shown.returncode, shown.stdout) == (0, f"lti-publish {version('lti-publish')}\n")
    unknown = lti_publish("frobnicate", settings=None, cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr == "lti-publish: unknown command 'frobnicate'; try lti-publish --help\n"
    assert list(tmp_path.iterdir()) == []
