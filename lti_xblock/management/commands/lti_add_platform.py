"""Register an LTI 1.3 platform (issuer + client_id) with one or more deployments: `lti-publish
platforms add`, under its older name."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from lti_xblock.management.commands._admin import AdminCommand, add_registration_arguments, register_platform
from lti_xblock.management.commands.lti_platforms import describe


class Command(AdminCommand):
    help = (
        "Register an LTI 1.3 platform with the tool (re-running adds deployments and updates URLs); "
        "the same as `lti-publish platforms add`."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_registration_arguments(parser)

    def run(self, **options: Any) -> None:
        self.say(f"Registered {describe(register_platform(options))}")
