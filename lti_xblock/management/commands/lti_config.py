"""What to copy into a platform to add the tool: its URLs, Canvas's JSON, an LTI 1.1 cartridge."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from lti_core.admin import normalise_url
from lti_xblock.management.commands._admin import AdminCommand


class Command(AdminCommand):
    help = (
        "Print the fields to copy into a platform (LTI 1.1 tool URL, LTI 1.3 login, keyset, redirect, deep "
        "linking and dynamic registration URLs) for TOOL_BASE_URLS[0] or --base-url; --canvas-json prints "
        "Canvas's developer-key JSON, --cartridge CONTENT_ID an LTI 1.1 cartridge."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--base-url", default="", help="The tool's public URL (default: LTI_PUBLISH['TOOL_BASE_URLS'][0])"
        )
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--canvas-json", action="store_true", help="Canvas's developer-key JSON")
        what.add_argument("--cartridge", default="", metavar="CONTENT_ID", help="The LTI 1.1 cartridge of one content")

    def run(self, **options: Any) -> None:
        from lti_xblock.config_views import canvas_config, cartridge
        from lti_xblock.launch_details import tool_urls

        configured = getattr(settings, "LTI_PUBLISH", {}).get("TOOL_BASE_URLS") or []
        given = options["base_url"] or (configured[0] if configured else "")
        if not given:
            raise CommandError("give --base-url https://<your LMS> (LTI_PUBLISH['TOOL_BASE_URLS'] is empty)")
        base = normalise_url(given, reason="base_url_invalid").rstrip("/")
        if options["canvas_json"]:
            self.say(json.dumps(canvas_config(base), indent=2))
            return
        if options["cartridge"]:
            self.stdout.write(cartridge(base, options["cartridge"]), ending="")
            return
        urls = tool_urls(base)
        rows = [
            ("LTI 1.1 Tool URL", urls.lti11_tool_url),
            ("LTI 1.3 Tool URL (target link URI)", urls.lti13_target_link_uri),
            ("LTI 1.3 Initiate login URL", urls.lti13_login_url),
            ("LTI 1.3 Redirection URI", urls.lti13_redirect_uri),
            ("LTI 1.3 Public keyset (JWKS) URL", urls.lti13_jwks_url),
            ("LTI 1.3 Deep linking URL", urls.deep_linking_url),
            ("LTI 1.3 Dynamic registration URL", urls.registration_url),
            ("Canvas developer key JSON URL", f"{base}/lti_publish/lti13/config.json"),
            ("LTI 1.1 cartridge URL", f"{base}/lti_publish/lti11/config.xml?content_id=<content_id>"),
        ]
        width = max(len(label) for label, _ in rows)
        for label, url in rows:
            self.say(f"{label + ':':<{width + 1}}  {url}")
        self.say("<content_id> is each published content's id (Studio shows it with the block's launch details).")
