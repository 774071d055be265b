"""Drop expired OIDC states and nonces (run it from cron or a periodic task)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from lti_xblock.store import DjangoStore


class Command(BaseCommand):
    help = "Delete expired LTI launch states and nonces."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Purged {DjangoStore().purge_expired(time.time())} expired rows")
