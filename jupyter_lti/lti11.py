"""The LTI 1.1 authenticator: a drop-in for ``ltiauthenticator.lti11.auth.LTI11Authenticator``.

Same class name (``c.LTI11Authenticator`` sections apply), same traits, same launch URL
(``/hub/lti/launch``) so Moodle's and Canvas's existing tool settings keep working. Underneath,
lti_core verifies the OAuth 1.0a signature over the public URL, the timestamp window and a
single-use nonce kept in a database (jupyterhub-ltiauthenticator never stores nonces).
"""

from __future__ import annotations

import functools
from typing import Any

from traitlets import Dict as DictTrait
from traitlets import Unicode

from jupyter_lti.auth import LtiAuthenticator
from jupyter_lti.handlers import FINISHED_PROMPT, LTI11ConfigHandler, LTI11LaunchHandler
from jupyter_lti.registration import LTI13RegistrationsHandler
from lti_core.lti11.launch import BASIC_LAUNCH, CONTENT_ITEM_REQUEST, Lti11LaunchVerifier
from lti_core.prompt import PromptOutcome
from lti_core.tool_config import build_lti11_cartridge
from lti_core.types import Consumer

LTI11_SPEC = "https://www.imsglobal.org/specs/ltiv1p1p1/implementation-guide"
LAUNCH_PATH = "lti/ltiaccess"


class LTI11Authenticator(LtiAuthenticator):
    """JupyterHub as an LTI 1.1 tool provider, for Moodle's, Canvas's or Brightspace's External Tool.

    Not a subclass of ltiauthenticator's ``LTI11Authenticator``, whose traits it defines all itself:
    inheriting them would list every option twice in ``jupyterhub --help-all`` and
    ``--generate-config``. Only the class name is shared, so ``c.LTI11Authenticator`` sections apply.
    """

    login_service = "LTI 1.1"
    #: The LTI versions whose launches it accepts (what the admins' page shows).
    lti_versions: tuple[str, ...] = ("1.1",)

    consumers = DictTrait(
        config=True,
        help=f"""Consumer keys and their shared secrets: `{{"key": "secret"}}`, one entry per platform.

        Each platform (consumer) signs its launches with its secret (OAuth 1.0a HMAC-SHA1,
        {LTI11_SPEC}#toc-4); users of different consumers never share a hub user.
        """,
    )

    username_key = Unicode(
        "",
        allow_none=True,
        config=True,
        help=f"""Launch parameter whose value becomes the hub username, e.g. `lis_person_contact_email_primary`,
        `ext_user_username` (Moodle) or `custom_canvas_user_id` (Canvas); see {LTI11_SPEC}#toc-3.

        Empty (default): a name that cannot collide across consumers, the user's given name plus a hash
        of (consumer key, user_id), such as `sam_3f2a9c01b4`. Whatever the key, the first launch links
        the platform user to the hub user for good, and a name already linked to someone else (or a hub
        admin's) gets a short hash appended instead of being shared.
        """,
    )

    config_title = Unicode("JupyterHub", config=True, help="Tool title in the configuration XML at /hub/lti11/config.")

    config_description = Unicode(
        "JupyterHub LTI 1.1 external tool",
        config=True,
        help="Tool description in the configuration XML at /hub/lti11/config.",
    )

    config_icon = Unicode(
        "",
        config=True,
        help="URL of a 16x16 icon (gif, png or jpg) for the configuration XML at /hub/lti11/config.",
    )

    def protocol_handlers(self) -> list[tuple[str, Any]]:
        return [
            ("/" + LAUNCH_PATH, LTI11LaunchHandler),
            # The launch URL jupyterhub-ltiauthenticator used: platforms set up for it keep working.
            ("/lti/launch", LTI11LaunchHandler),
            ("/lti11/config", LTI11ConfigHandler),
            # The admins' page (its consumers): the one the LTI 1.3 authenticator serves too.
            ("/lti13/registrations", LTI13RegistrationsHandler),
        ]

    def save_configured_platforms(self) -> None:
        # The config says each consumer's key and secret; whether it is on is a hub admin's switch
        # (/hub/lti13/registrations), kept across restarts, as its name.
        for key, secret in sorted(self.consumers.items()):
            saved = self.store.get_consumer(str(key))
            name, enabled, moved = (saved.name, saved.enabled, saved.migrated_to) if saved else ("", True, "")
            self.store.save_consumer(Consumer(str(key), str(secret), name, enabled, moved))

    async def authenticate(self, handler: Any, data: dict[str, Any] | None = None) -> dict[str, Any]:
        data = data or {}
        if isinstance(data.get(FINISHED_PROMPT), PromptOutcome):
            return await self.finish_prompt(handler, data[FINISHED_PROMPT])
        # ContentItemSelectionRequest: the instructor picks from the catalog (jupyter_lti.deep_linking).
        verifier = Lti11LaunchVerifier(self.store, message_types=(BASIC_LAUNCH, CONTENT_ITEM_REQUEST))
        verified = await self.off_loop(  # reads the consumer: in the store's threads, as the commit is
            verifier.check,
            method=str(data.get("method", "")),
            url=str(data.get("url", "")),
            params=data.get("params", []),
        )
        return await self.sign_in_verified(handler, verified.launch, functools.partial(verifier.commit, verified))

    def lti11_config_xml(self, handler: Any) -> str:
        return build_lti11_cartridge(
            title=self.config_title,
            description=self.config_description,
            icon_url=self.config_icon,
            launch_url=self.hub_url(handler, LAUNCH_PATH),
        )
