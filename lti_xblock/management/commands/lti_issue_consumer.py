"""Issue an LTI 1.1 consumer key and secret. The secret is shown once."""

from __future__ import annotations

import secrets
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lti_core.types import Consumer
from lti_xblock.store import DjangoStore


class Command(BaseCommand):
    help = "Issue an LTI 1.1 consumer key and secret for one platform; the secret is printed once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True, help="Which platform this is for, e.g. 'Moodle (school)'")
        parser.add_argument("--key", default="", help="Consumer key to use (default: a new random one)")

    def handle(self, *args: Any, **options: Any) -> None:
        store = DjangoStore()
        key = options["key"] or f"lti-{secrets.token_hex(8)}"
        if store.get_consumer(key) is not None:
            raise CommandError(f"consumer key {key!r} exists already; its secret is not shown again")
        secret = secrets.token_urlsafe(32)
        store.save_consumer(Consumer(key, secret, options["name"]))
        self.stdout.write(f"Consumer key:    {key}\nShared secret:   {secret}\n")
        self.stdout.write("Paste both into the platform now: this command never shows the secret again.")
