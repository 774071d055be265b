"""The user links: which platform identity (platform, platform user id) signs in as which local user."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model

from lti_core.errors import NotFound
from lti_core.i18n import N_
from lti_core.types import UserLink
from lti_xblock.management.commands._admin import AdminCommand, subcommands
from lti_xblock.store import DjangoStore


def usernames(links: list[UserLink]) -> dict[str, str]:
    ids = {link.local_user_id for link in links}
    users = get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")
    return {str(pk): str(name) for pk, name in users}


def describe(link: UserLink, names: dict[str, str]) -> str:
    user = names.get(link.local_user_id, "?")
    return f"{link.platform}  user_id={link.platform_user_id}  ->  {user} (id {link.local_user_id})"


class Command(AdminCommand):
    help = (
        "The user links: list them (platform, platform user id, local user), show one with the launches kept "
        "for it, or remove one. Links are permanent until removed: the same person always lands as the same "
        "user; after a removal, their next launch is a first launch again."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = subcommands(parser, dest="action", required=True, metavar="{list,show,remove}")
        listed = actions.add_parser("list", help="every link, by platform")
        listed.add_argument("--platform", default="", help="Only this platform's (an issuer or a consumer key)")
        show = actions.add_parser("show", help="one link and the latest launches kept for it")
        show.add_argument("platform", help="The issuer (LTI 1.3) or consumer key (LTI 1.1)")
        show.add_argument("platform_user_id", help="The platform's user id (sub, user_id)")
        remove = actions.add_parser("remove", help="remove one link (the local user and their work stay)")
        remove.add_argument("platform", help="The issuer (LTI 1.3) or consumer key (LTI 1.1)")
        remove.add_argument("platform_user_id", help="The platform's user id (sub, user_id)")

    def run(self, **options: Any) -> None:
        store = DjangoStore()
        if options["action"] == "list":
            links = store.list_user_links(options["platform"])
            if not links:
                self.say("No user link.")
            names = usernames(links)
            for each in links:
                self.say(describe(each, names))
            return
        link = store.get_user_link(options["platform"], options["platform_user_id"])
        if link is None:
            raise NotFound("unknown_user_link", N_("No user is linked to this platform identity."))
        if options["action"] == "remove":
            store.delete_user_link(link.platform, link.platform_user_id)
            self.say(f"Removed: {describe(link, usernames([link]))}")
            return
        self.say(describe(link, usernames([link])))
        for context in store.find_launch_contexts(link.local_user_id):
            if (context.platform, context.platform_user_id) != (link.platform, link.platform_user_id):
                continue
            when = datetime.fromtimestamp(context.updated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
            self.say(
                f"  launch {when}: resource_link={context.resource_link_id} context={context.context_id or '-'} "
                f"role={context.role.value} LTI {context.lti_version}"
            )
