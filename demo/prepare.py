"""Demo set-up shared by `make demo` and the tests: consumer, platform registration, tool key."""

from __future__ import annotations

import secrets

from demo.platform import CLIENT_ID, CONSUMER_KEY, DEPLOYMENT_ID, issuer, published_content
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.types import Consumer, Deployment, Registration
from lti_xblock.launch_details import launch_details, tool_urls
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
    urls = tool_urls(base)
    lines = [
        "",
        "lti-publish demo is starting.",
        f"  Local launch page (no LMS needed):  {base}/demo/",
        "",
        "Moodle: Site administration > Plugins > Activity modules > External tool > Manage tools >",
        "        configure a tool manually; the same for all the content:",
        "  LTI 1.3 (LTI version 1.3):",
        f"    Initiate login URL:  {urls.lti13_login_url}",
        f"    Redirection URI(s):  {urls.lti13_redirect_uri}",
        "    Public key type:     Keyset URL",
        f"    Public keyset URL:   {urls.lti13_jwks_url}",
        '    Supports Deep Linking (Content-Item Message): on, for teachers\' "Select content"',
        f"    Content Selection URL: {urls.deep_linking_url}",
        "    then register Moodle here with the Platform ID, Client ID and Deployment ID Moodle shows:",
        "      .venv/bin/python -m demo lti-publish add-platform --issuer <Platform ID> --client-id <Client ID> \\",
        "        --auth-url <Authentication request URL> --token-url <Access token URL> \\",
        "        --jwks-url <Public keyset URL> --deployment <Deployment ID>",
        "  LTI 1.1 (LTI version LTI 1.0/1.1):",
        "    Consumer key/secret: run  .venv/bin/python -m demo lti-publish issue-consumer --name Moodle",
        "",
        'Each content\'s Tool URL, for an activity (with "Select content", teachers pick it instead):',
    ]
    for content_id, title in published_content():
        details = launch_details(base, content_id)
        lines += [
            f"  {title}",
            f"    LTI 1.3:  {details.lti13_target_link_uri}",
            f"    LTI 1.1:  {details.lti11_tool_url}",
        ]
    return "\n".join([*lines, ""])
