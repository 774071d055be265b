"""Register an LTI 1.3 platform (issuer + client_id) with one or more deployments."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lti_core.types import Deployment, Registration
from lti_xblock.store import DjangoStore


class Command(BaseCommand):
    help = "Register an LTI 1.3 platform with the tool (re-running adds deployments and updates URLs)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--issuer", required=True, help="The platform's issuer, e.g. https://moodle.example")
        parser.add_argument("--client-id", required=True, help="The client ID the platform gave this tool")
        parser.add_argument("--auth-url", required=True, help="Authentication request URL (Moodle: /mod/lti/auth.php)")
        parser.add_argument("--token-url", required=True, help="Access token URL (Moodle: /mod/lti/token.php)")
        parser.add_argument("--jwks-url", required=True, help="Public keyset URL (Moodle: /mod/lti/certs.php)")
        parser.add_argument("--deployment", action="append", default=[], help="Deployment ID (repeatable)")
        parser.add_argument("--name", default="", help="A label for admins")

    def handle(self, *args: Any, **options: Any) -> None:
        for option in ("issuer", "auth_url", "token_url", "jwks_url"):
            if not str(options[option]).startswith(("https://", "http://")):
                raise CommandError(f"--{option.replace('_', '-')} must be an http(s) URL")
        if not options["deployment"]:
            raise CommandError("give at least one --deployment (Moodle shows it as the tool's Deployment ID)")
        store = DjangoStore()
        existing = store.get_registration(options["issuer"], options["client_id"])
        known = list(existing.deployments) if existing else []
        for deployment_id in options["deployment"]:
            if not any(d.deployment_id == deployment_id for d in known):
                known.append(Deployment(deployment_id))
        registration = Registration(
            issuer=options["issuer"],
            client_id=options["client_id"],
            auth_login_url=options["auth_url"],
            auth_token_url=options["token_url"],
            key_set_url=options["jwks_url"],
            deployments=tuple(known),
            name=options["name"] or (existing.name if existing else ""),
        )
        store.save_registration(registration)
        deployments = ", ".join(d.deployment_id for d in registration.deployments)
        self.stdout.write(
            f"Registered {registration.issuer} (client_id {registration.client_id}); deployments: {deployments}"
        )
