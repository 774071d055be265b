"""LTI 1.1 consumers: issue a key and secret (the secret is shown once), list, disable, enable, delete, and
map one to the LTI 1.3 issuer its platform moved to."""

from __future__ import annotations

from argparse import ArgumentParser
from dataclasses import replace
from typing import Any

from lti_core.admin import (
    consumer_summary,
    delete_consumer,
    get_consumer,
    issue_consumer,
    normalise_issuer,
    set_consumer_enabled,
)
from lti_core.types import Consumer
from lti_xblock.management.commands._admin import AdminCommand, subcommands
from lti_xblock.store import DjangoStore


def add_issue_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="Which platform this is for, e.g. 'Moodle (school)'")
    parser.add_argument("--key", default="", help="Consumer key to use (default: a new random one)")


def describe(consumer: Consumer) -> str:
    summary = consumer_summary(consumer)  # never the secret
    state = "enabled" if summary.enabled else "disabled"
    described = f"{summary.key}  {state}" + (f"  name={summary.name}" if summary.name else "")
    return described + (f"  migrated_to={consumer.migrated_to}" if consumer.migrated_to else "")


class Command(AdminCommand):
    help = (
        "The LTI 1.1 consumers (key and shared secret, one per platform): issue one (its secret is printed "
        "once, never again), list them (never their secrets), disable, enable or delete one, or map one to the "
        "LTI 1.3 issuer its platform moved to (its users keep their accounts)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = subcommands(parser, dest="action", required=True, metavar="ACTION")
        add_issue_arguments(actions.add_parser("issue", help="issue a key and secret; the secret is printed once"))
        actions.add_parser("list", help="every consumer's key, state and name (never a secret)")
        for action, summary in (
            ("disable", "refuse its launches (its secret and user links are kept)"),
            ("enable", "accept its launches again"),
            ("delete", "forget the key and secret (its users' links are kept)"),
        ):
            actions.add_parser(action, help=summary).add_argument("key", help="The consumer key")
        migrate = actions.add_parser(
            "migrate",
            help="LTI 1.3 launches from ISSUER sign in the users this consumer's same user ids are linked to",
        )
        migrate.add_argument("key", help="The consumer key")
        target = migrate.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--to", metavar="ISSUER", default="", help="The issuer of the platform's LTI 1.3 registration"
        )
        target.add_argument("--clear", action="store_true", help="Remove the mapping")

    def run(self, **options: Any) -> None:
        store = DjangoStore()
        action = options["action"]
        if action == "issue":
            self.issue(options)
        elif action == "list":
            consumers = store.list_consumers()
            if not consumers:
                self.say("No LTI 1.1 consumer is issued.")
            for consumer in consumers:
                self.say(describe(consumer))
        elif action == "migrate":
            issuer = "" if options["clear"] else normalise_issuer(options["to"])
            consumer = replace(get_consumer(store, options["key"]), migrated_to=issuer)
            store.save_consumer(consumer)
            self.say(describe(consumer))
        elif action == "delete":
            delete_consumer(store, options["key"])
            self.say(f"Deleted consumer {options['key']}")
        else:
            self.say(describe(set_consumer_enabled(store, options["key"], action == "enable")))

    def issue(self, options: dict[str, Any]) -> None:
        consumer = issue_consumer(DjangoStore(), options["name"], options["key"])
        self.say(f"Consumer key:    {consumer.key}\nShared secret:   {consumer.secret}\n")
        self.say("Paste both into the platform now: this command never shows the secret again.")
