"""Demo set-up shared by `make demo` and the tests: consumer, platform registration, tool key."""

from __future__ import annotations

import secrets

from demo.platform import CLIENT_ID, CONSUMER_KEY, DEPLOYMENT_ID, issuer, published_content
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.types import Consumer, Deployment, Registration
from lti_xblock.launch_details import launch_details
from lti_xblock.store import DjangoStore


def prepare(base: str) -> str:
    """Make the demo's platform known to the tool; return the text `make demo` prints."""
    store = DjangoStore()
    consumer = store.get_consumer(CONSUMER_KEY)
    if consumer is None:
        consumer = Consumer(CONSUMER_KEY, secrets.token_urlsafe(24), "Demo launch page")
        store.save_consumer(consumer)
    platform = issuer(base)
    store.save_registration(
        Registration(
            issuer=platform,
            client_id=CLIENT_ID,
            auth_login_url=f"{base}/demo/platform/auth",
            auth_token_url=f"{base}/demo/platform/token",
            key_set_url=f"{base}/demo/platform/jwks",
            deployments=(Deployment(DEPLOYMENT_ID, "demo"),),
            name="Demo launch page",
        )
    )
    ToolKeySet(store).ensure_key()
    lines = [
        "",
        "lti-publish demo is starting.",
        f"  Local launch page (no LMS needed):  {base}/demo/",
        "",
    ]
    for content_id, title in published_content():
        d = launch_details(base, content_id)
        lines += [
            f"Content: {title}",
            "  LTI 1.1 (Moodle: External tool > Manage tools > configure a tool manually, LTI 1.0/1.1):",
            f"    Tool URL:            {d.lti11_tool_url}",
            "    Consumer key/secret: run  .venv/bin/python -m demo lti-publish issue-consumer --name Moodle",
            "  LTI 1.3 (Moodle: configure a tool manually, LTI version 1.3):",
            f"    Tool URL:            {d.lti13_target_link_uri}",
            f"    Initiate login URL:  {d.lti13_login_url}",
            f"    Redirection URI(s):  {d.lti13_redirect_uri}",
            "    Public key type:     Keyset URL",
            f"    Public keyset URL:   {d.lti13_jwks_url}",
            "    then register Moodle here with the Platform ID, Client ID and Deployment ID Moodle shows:",
            "      .venv/bin/python -m demo lti-publish add-platform --issuer <Platform ID> --client-id <Client ID> \\",
            "        --auth-url <Authentication request URL> --token-url <Access token URL> \\",
            "        --jwks-url <Public keyset URL> --deployment <Deployment ID>",
            "",
        ]
    return "\n".join(lines)
