"""What the admin commands share: one-line errors, lti-publish's version, lti_core's refusals as
command errors. (Django lists no command for a module whose name starts with "_".)"""

from __future__ import annotations

from argparse import ArgumentParser
from functools import partial
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from lti_core.admin import ManualRegistration, save_manual_registration
from lti_core.errors import LtiError
from lti_core.types import Registration
from lti_xblock.store import DjangoStore


class OneLineParser(CommandParser):
    """Bad input is one line on stderr and exit 2 (from the command line), or a CommandError (from
    call_command); sub-commands' parsers are the same, on every Django version."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: {message} (try {self.prog} --help)\n")
        raise CommandError(f"Error: {message}")

    def add_subparsers(self, **kwargs: Any) -> Any:
        return subcommands(self, **kwargs)


def subcommands(parser: ArgumentParser, **kwargs: Any) -> Any:
    """``parser.add_subparsers``, whose parsers are ``OneLineParser``s (Django 5 makes its own
    sub-parsers know they run from the command line; Django 4.2 does not, and would show a traceback)."""
    called = getattr(parser, "called_from_command_line", None)
    kwargs["parser_class"] = partial(OneLineParser, called_from_command_line=called)
    return ArgumentParser.add_subparsers(parser, **kwargs)


class AdminCommand(BaseCommand):
    """A command of lti-publish: its version, one-line errors; ``run`` does the work, and a refusal
    from lti_core or a database not migrated yet is a one-line error (exit 1), never a traceback."""

    def get_version(self) -> str:
        from lti_xblock.cli import version

        return version()

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineParser
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.run(**options)
        except LtiError as error:
            raise CommandError(
                f"{error.text()} ({error.reason}{': ' + error.detail if error.detail else ''})"
            ) from error
        except DatabaseError as error:
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CommandError(
                f"the database is not ready ({first_line}); run: lti-publish manage migrate lti_xblock"
            ) from error

    def run(self, **options: Any) -> None:
        raise NotImplementedError

    def say(self, text: str) -> None:
        self.stdout.write(text)


# -- registering a platform by hand (platforms add, add-platform) ---------------------------------


def add_registration_arguments(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--issuer",
        required=True,
        help="The platform's issuer (Moodle: its Platform ID, the site URL), e.g. https://moodle.example",
    )
    parser.add_argument("--client-id", required=True, help="The client ID the platform gave this tool")
    parser.add_argument("--auth-url", required=True, help="Authentication request URL (Moodle: /mod/lti/auth.php)")
    parser.add_argument("--token-url", required=True, help="Access token URL (Moodle: /mod/lti/token.php)")
    parser.add_argument("--jwks-url", required=True, help="Public keyset URL (Moodle: /mod/lti/certs.php)")
    parser.add_argument(
        "--deployment", action="append", default=[], help="Deployment ID (Moodle: the tool's Deployment ID; repeatable)"
    )
    parser.add_argument("--name", default="", help="A label for admins")


def register_platform(options: dict[str, Any]) -> Registration:
    """Save the registration the options describe (normalised by lti_core); re-running updates it."""
    if not options["deployment"]:
        raise CommandError(
            "give at least one --deployment (Moodle shows it as the tool's Deployment ID); "
            "or add them later: lti-publish platforms deployments add ISSUER CLIENT_ID DEPLOYMENT_ID"
        )
    return save_manual_registration(
        DjangoStore(),
        ManualRegistration(
            issuer=options["issuer"],
            client_id=options["client_id"],
            auth_login_url=options["auth_url"],
            auth_token_url=options["token_url"],
            key_set_url=options["jwks_url"],
            deployment_ids=tuple(options["deployment"]),
            name=options["name"],
        ),
    )
