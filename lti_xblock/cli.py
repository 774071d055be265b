"""`lti-publish`: the admin's command line (the Django management commands, under friendly names).

It runs with the site's Django settings, named by DJANGO_SETTINGS_MODULE, and with nothing else: without
them it says so and exits 2, before anything is imported or written (no default settings, no database
made up in the current directory). In Open edX the same commands run as `./manage.py lms lti_add_platform
...`; the demo runs them as `python -m demo lti-publish ...`.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import NoReturn

PROG = "lti-publish"
#: Our command name: (the Django management command, what it does).
COMMANDS = {
    "platforms": (
        "lti_platforms",
        "LTI 1.3 platforms: list, show, add, approve, enable, disable, delete; deployments add|remove; "
        "accept-new-deployments on|off",
    ),
    "consumers": (
        "lti_consumers",
        "LTI 1.1 consumers: issue (secret shown once), list, disable, enable, delete, migrate",
    ),
    "links": ("lti_links", "user links (platform, platform user id, local user): list, show, remove"),
    "courses": (
        "lti_courses",
        "whole courses as LTI content: publish COURSE_ID [--max-score N] [--no-grade-sync], list, unpublish",
    ),
    "config": ("lti_config", "the URLs to copy into a platform; --canvas-json, --cartridge CONTENT_ID"),
    "add-platform": ("lti_add_platform", "the same as platforms add"),
    "issue-consumer": ("lti_issue_consumer", "the same as consumers issue"),
    "registrations": (
        "lti_registrations",
        "the same as platforms list|approve|disable",
    ),
    "keys": ("lti_keys", "the tool's LTI 1.3 signing keys: list, rotate [--overlap HOURS], retire KID"),
    "purge": ("lti_purge", "delete expired launch states and nonces (e.g. from cron)"),
    "sync": (
        "lti_sync",
        "grade delivery: grades --now [--retry-failed] sends due scores now; status lists where they stand",
    ),
}
MANAGE = "manage"
EXIT_USAGE = 2


def usage() -> str:
    width = max(map(len, [*COMMANDS, MANAGE]))
    return "\n".join(
        [
            f"usage: {PROG} COMMAND [options]",
            "",
            "commands:",
            *(f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()),
            f"  {MANAGE:<{width}}  any Django management command, e.g. {PROG} {MANAGE} migrate lti_xblock",
            "",
            f"Platforms that register themselves (LTI Dynamic Registration) wait for {PROG} platforms",
            "approve ISSUER CLIENT_ID before they can launch.",
            "",
            f"{PROG} COMMAND --help shows a command's options. Every command runs with your site's Django",
            "settings: set DJANGO_SETTINGS_MODULE (in Open edX: lms.envs.production, where the commands also",
            "run as ./manage.py lms lti_...).",
            "",
            "options:",
            "  -h, --help     show this help",
            "  --version      show lti-publish's version",
        ]
    )


def version() -> str:
    try:
        return metadata.version("lti-publish")
    except metadata.PackageNotFoundError:
        return "unknown"


def fail(message: str) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if args[0] == "--version":
        print(f"{PROG} {version()}")
        return
    command, rest = args[0], args[1:]
    if command != MANAGE and command not in COMMANDS:
        fail(f"unknown command {command!r}; try {PROG} --help")
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        django_command = COMMANDS[command][0] if command in COMMANDS else "<command>"
        fail(
            "set DJANGO_SETTINGS_MODULE to your site's settings (in Open edX: lms.envs.production), "
            f"or run it as ./manage.py lms {django_command}"
        )
    try:
        import django
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:
        fail("needs Django: pip install 'lti-publish[xblock]'")
    if command == MANAGE:
        from django.core.management import execute_from_command_line

        execute_from_command_line([PROG, *rest])
        return
    try:
        django.setup()
    except (ImportError, ImproperlyConfigured) as error:
        fail(f"cannot load the settings DJANGO_SETTINGS_MODULE={os.environ['DJANGO_SETTINGS_MODULE']}: {error}")
    from django.apps import apps
    from django.core.management import load_command_class

    if not apps.is_installed("lti_xblock"):
        fail(f"lti_xblock is not in INSTALLED_APPS of {os.environ['DJANGO_SETTINGS_MODULE']}")
    # Run as `lti-publish add-platform`: its --help and errors name it so, not lti_add_platform.
    load_command_class("lti_xblock", COMMANDS[command][0]).run_from_argv([PROG, command, *rest])
