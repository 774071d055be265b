"""The tool's LTI 1.3 signing keys: list them, rotate to a new one (the old ones stay published for an
overlap), or retire one at once."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError

from lti_core.errors import LtiError
from lti_core.lti13.tool_keys import DEFAULT_OVERLAP, ToolKeySet
from lti_xblock.management.commands._admin import AdminCommand
from lti_xblock.store import DjangoStore

HINTS = {
    "unknown_tool_key": "no published tool key has the kid {kid}; `lti-publish keys list` shows them",
    "last_tool_key": "{kid} is the only signing key; `lti-publish keys rotate` first, then retire it",
}


def when(epoch: float) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10_000:
        raise ValueError(text)
    return value


class Command(AdminCommand):
    help = (
        "The tool's LTI 1.3 signing keys: list them; rotate to a new key (older keys stay published for "
        "--overlap hours, 72 by default, so platforms' caches turn over); retire KID at once."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,rotate,retire}")
        actions.add_parser("list", help="kid, created, retires and state of every key (never the private key)")
        rotate = actions.add_parser("rotate", help="add a new signing key; older keys leave after the overlap")
        rotate.add_argument(
            "--overlap",
            type=hours,
            default=DEFAULT_OVERLAP / 3600,
            metavar="HOURS",
            help="hours the older keys stay published (default: %(default)g)",
        )
        retire = actions.add_parser("retire", help="stop publishing and using a key now")
        retire.add_argument("kid", help="The key's kid, as `list` shows it")

    def run(self, **options: Any) -> None:
        now = time.time()
        try:
            keys = ToolKeySet(DjangoStore())
            keys.retire_due(now)
            if options["action"] == "rotate":
                key = keys.rotate(now, options["overlap"] * 3600)
                self.stdout.write(f"New signing key {key.kid}; older keys leave in {options['overlap']:g} hours")
            elif options["action"] == "retire":
                keys.retire(options["kid"], now)
                self.stdout.write(f"Retired key {options['kid']}")
            else:
                listed = keys.list(now)
                if not listed:
                    self.stdout.write("No tool key yet: one is made when the JWKS is first served.")
                for info in listed:
                    self.stdout.write(
                        f"{info.kid}  created={when(info.created_at)}  retires={when(info.retires_at)}  "
                        f"state={info.state}"
                    )
        except LtiError as error:
            hint = HINTS.get(error.reason)
            raise CommandError(
                hint.format(kid=options.get("kid", "")) if hint else f"{error.reason}: {error.detail or error.text()}"
            ) from None
