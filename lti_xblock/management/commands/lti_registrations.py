"""List the LTI 1.3 platform registrations, and approve or disable one (dynamic ones start pending):
the same as `lti-publish platforms list|approve|disable`."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from lti_xblock.management.commands._admin import subcommands
from lti_xblock.management.commands.lti_platforms import Command as PlatformsCommand


class Command(PlatformsCommand):
    help = (
        "List the LTI 1.3 platform registrations (list), or let one launch (approve ISSUER CLIENT_ID) or "
        "stop its launches (disable ISSUER CLIENT_ID). Platforms registered by dynamic registration wait "
        "for approve. `lti-publish platforms` does the same, and more."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = subcommands(parser, dest="action", required=True, metavar="{list,approve,disable}")
        actions.add_parser("list", help="issuer, client ID, status and deployments of every registration")
        for action, summary in (("approve", "let the registration launch"), ("disable", "turn its launches off")):
            sub = actions.add_parser(action, help=summary)
            sub.add_argument("issuer", help="The platform's issuer, as `list` shows it")
            sub.add_argument("client_id", help="The client ID, as `list` shows it")

    def run(self, **options: Any) -> None:
        super().run(**options)
