"""Issue an LTI 1.1 consumer key and secret. The secret is shown once: `lti-publish consumers issue`,
under its older name."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from lti_xblock.management.commands.lti_consumers import Command as ConsumersCommand
from lti_xblock.management.commands.lti_consumers import add_issue_arguments


class Command(ConsumersCommand):
    help = (
        "Issue an LTI 1.1 consumer key and secret for one platform; the secret is printed once. The same "
        "as `lti-publish consumers issue`."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        add_issue_arguments(parser)

    def run(self, **options: Any) -> None:
        self.issue(options)
