"""`lti-publish`: the admin's command line (the Django management commands, under friendly names).

In Open edX the same commands run as `./manage.py lms lti_add_platform ...`.
"""

from __future__ import annotations

import os
import sys

COMMANDS = {
    "add-platform": "lti_add_platform",
    "issue-consumer": "lti_issue_consumer",
    "rotate-key": "lti_rotate_key",
    "purge": "lti_purge",
}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(
            "usage: lti-publish {" + ",".join(COMMANDS) + ",manage} [options]\n"
            "       lti-publish COMMAND --help   for a command's options"
        )
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lti_xblock.demo.settings")
    from django.core.management import execute_from_command_line

    command = args[0]
    rest = args[1:]
    if command == "manage":
        execute_from_command_line(["lti-publish", *rest])
    elif command in COMMANDS:
        execute_from_command_line(["lti-publish", COMMANDS[command], *rest])
    else:
        sys.exit(f"lti-publish: unknown command {command!r}; try lti-publish --help")
