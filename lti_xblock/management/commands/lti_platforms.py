"""LTI 1.3 platforms: list, show, register by hand, approve/enable, disable, delete; their deployments."""

from __future__ import annotations

from argparse import ArgumentParser
from dataclasses import replace
from typing import Any

from django.core.management.base import CommandError

from lti_core.admin import (
    add_deployments,
    deployment_summary,
    find_registration,
    remove_deployment,
    set_accept_new_deployments,
)
from lti_core.types import Registration, RegistrationStatus
from lti_xblock.management.commands._admin import (
    AdminCommand,
    add_registration_arguments,
    register_platform,
    subcommands,
)
from lti_xblock.store import DjangoStore

STATUS_OF = {
    "approve": RegistrationStatus.ACTIVE,
    "enable": RegistrationStatus.ACTIVE,
    "disable": RegistrationStatus.DISABLED,
}
ON_OFF = {"on": True, "off": False}


def _names(parser: ArgumentParser) -> None:
    parser.add_argument("issuer", help="The platform's issuer, as `lti-publish platforms list` shows it")
    parser.add_argument("client_id", help="The client ID, as `lti-publish platforms list` shows it")


def describe(registration: Registration) -> str:
    return (
        f"{registration.issuer}  client_id={registration.client_id}  status={registration.status.value}  "
        f"deployments={deployment_summary(registration)}" + (f"  name={registration.name}" if registration.name else "")
    )


class Command(AdminCommand):
    help = (
        "The LTI 1.3 platforms the tool accepts launches from: list them, show one, register one by hand "
        "(add), approve or enable one (platforms that register themselves wait for approve), disable or "
        "delete one, add or remove deployments, accept any new deployment."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = subcommands(parser, dest="action", required=True, metavar="ACTION")
        actions.add_parser("list", help="issuer, client ID, status and deployments of every platform")
        show = actions.add_parser("show", help="everything the tool keeps about one platform")
        _names(show)
        add = actions.add_parser(
            "add", help="register a platform by hand (running it again updates its URLs and adds deployments)"
        )
        add_registration_arguments(add)
        for action, summary in (
            ("approve", "let a platform that registered itself launch"),
            ("enable", "let a disabled platform launch again"),
            ("disable", "turn a platform's launches off (its deployments and user links are kept)"),
            ("delete", "forget a platform and its deployments (its users' links are kept)"),
        ):
            _names(actions.add_parser(action, help=summary))
        deployments = actions.add_parser("deployments", help="add or remove a platform's deployments")
        change = subcommands(deployments, dest="change", required=True, metavar="{add,remove}")
        added = change.add_parser("add", help="accept launches from these deployments too")
        _names(added)
        added.add_argument("deployment_ids", nargs="+", metavar="DEPLOYMENT_ID", help="Deployment ID(s)")
        removed = change.add_parser("remove", help="stop accepting launches from this deployment")
        _names(removed)
        removed.add_argument("deployment_id", metavar="DEPLOYMENT_ID", help="Deployment ID")
        accept = actions.add_parser(
            "accept-new-deployments",
            help="on: accept launches from any deployment of the platform; off: only from the listed ones",
        )
        _names(accept)
        accept.add_argument("accept", choices=sorted(ON_OFF), help="on or off")

    def run(self, **options: Any) -> None:
        store = DjangoStore()
        action = options["action"]
        if action == "list":
            registrations = store.list_registrations()
            if not registrations:
                self.say("No LTI 1.3 platform is registered.")
            for registration in registrations:
                self.say(describe(registration))
            return
        if action == "add":
            saved = register_platform(options)
            self.say(f"Registered {describe(saved)}")
            return
        issuer, client_id = options["issuer"], options["client_id"]
        if action == "deployments" and options["change"] == "add":
            self.say(describe(add_deployments(store, issuer, client_id, options["deployment_ids"])))
            return
        if action == "deployments":
            self.say(describe(remove_deployment(store, issuer, client_id, options["deployment_id"])))
            return
        if action == "accept-new-deployments":
            self.say(describe(set_accept_new_deployments(store, issuer, client_id, ON_OFF[options["accept"]])))
            return
        registration = find_registration(store, issuer, client_id)
        if action == "show":
            self.say(describe(registration))
            self.say(f"  authentication request URL: {registration.auth_login_url}")
            self.say(f"  access token URL:           {registration.auth_token_url}")
            self.say(f"  public keyset URL:          {registration.key_set_url}")
            self.say(f"  accepts new deployments:    {'on' if registration.any_deployment else 'off'}")
            return
        if action == "delete":
            if not store.delete_registration(registration.issuer, registration.client_id):
                raise CommandError(f"{registration.issuer} (client_id {registration.client_id}) is already gone")
            self.say(f"Deleted {registration.issuer} (client_id {registration.client_id})")
            return
        changed = replace(registration, status=STATUS_OF[action])
        store.save_registration(changed)
        self.say(f"{changed.issuer} (client_id {changed.client_id}) is now {changed.status.value}")
