"""List the LTI 1.3 platform registrations, and approve or disable one (dynamic ones start pending)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lti_core.errors import LtiError
from lti_core.registration import set_registration_status
from lti_core.types import RegistrationStatus
from lti_xblock.store import DjangoStore

STATUS_OF = {"approve": RegistrationStatus.ACTIVE, "disable": RegistrationStatus.DISABLED}


class Command(BaseCommand):
    help = (
        "List the LTI 1.3 platform registrations (list), or let one launch (approve ISSUER CLIENT_ID) or "
        "stop its launches (disable ISSUER CLIENT_ID). Platforms registered by dynamic registration wait "
        "for approve."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,approve,disable}")
        actions.add_parser("list", help="issuer, client ID, status and deployments of every registration")
        for action, summary in (("approve", "let the registration launch"), ("disable", "turn its launches off")):
            sub = actions.add_parser(action, help=summary)
            sub.add_argument("issuer", help="The platform's issuer, as `list` shows it")
            sub.add_argument("client_id", help="The client ID, as `list` shows it")

    def handle(self, *args: Any, **options: Any) -> None:
        store = DjangoStore()
        if options["action"] == "list":
            registrations = store.list_registrations()
            if not registrations:
                self.stdout.write("No LTI 1.3 platform is registered.")
            for registration in registrations:
                deployments = ", ".join(d.deployment_id for d in registration.deployments) or (
                    "any" if registration.any_deployment else "none"
                )
                self.stdout.write(
                    f"{registration.issuer}  client_id={registration.client_id}  "
                    f"status={registration.status.value}  deployments={deployments}"
                )
            return
        try:
            changed = set_registration_status(
                store, options["issuer"], options["client_id"], STATUS_OF[options["action"]]
            )
        except LtiError as error:
            raise CommandError(
                f"no registration of {options['issuer']} with client_id {options['client_id']}; "
                "`lti-publish registrations list` shows them"
            ) from error
        self.stdout.write(f"{changed.issuer} (client_id {changed.client_id}) is now {changed.status.value}")
