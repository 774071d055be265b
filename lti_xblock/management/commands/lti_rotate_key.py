"""Rotate the tool's LTI 1.3 signing key, or retire an old one."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from lti_core.lti13.tool_keys import ToolKeySet
from lti_xblock.store import DjangoStore


class Command(BaseCommand):
    help = "Add a new tool signing key (old keys stay published until retired), or --retire KID."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--retire", default="", metavar="KID", help="Stop publishing and using this key")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = ToolKeySet(DjangoStore())
        if options["retire"]:
            keys.retire(options["retire"])
            self.stdout.write(f"Retired key {options['retire']}")
            return
        key = keys.rotate()
        self.stdout.write(f"New signing key {key.kid}; active keys: {len(keys.jwks()['keys'])}")
