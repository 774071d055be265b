"""The LTI 1.3 authenticator: a drop-in for ``ltiauthenticator.lti13.auth.LTI13Authenticator``.

A hub config written for jupyterhub-ltiauthenticator 1.6 keeps working when only
``c.JupyterHub.authenticator_class`` changes: the class has the same name (so ``c.LTI13Authenticator``
sections apply), the same traits and the same URLs (``/hub/lti13/oauth_login``, ``oauth_callback``,
``config``), so platforms need no new registration. What changes is underneath: every check of the
1EdTech Security Framework (lti_core), the platform's key set cached instead of fetched per launch
and fetched without blocking the hub, nonces and states in a database, collision-free usernames.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from jupyterhub.utils import url_path_join
from traitlets import Bool, Float, Unicode, default, observe
from traitlets import List as ListTrait
from traitlets import Set as SetTrait

from jupyter_lti.auth import LtiAuthenticator
from jupyter_lti.handlers import (
    FINISHED_PROMPT,
    LTI13ConfigHandler,
    LTI13JwksHandler,
    LTI13LaunchHandler,
    LTI13LoginHandler,
)
from jupyter_lti.http import PlatformKeyLoader
from jupyter_lti.registration import LTI13RegistrationHandler, LTI13RegistrationsHandler
from lti_core.lti13.binding import BrowserEvidence
from lti_core.lti13.claims import DEEP_LINKING_REQUEST, RESOURCE_LINK_REQUEST
from lti_core.lti13.jwks import PlatformKeyCache
from lti_core.lti13.launch import SIGNING_ALGORITHM, LaunchValidator
from lti_core.lti13.login import LoginRedirect, OidcLogin
from lti_core.prompt import PromptOutcome
from lti_core.registration import ToolDescription
from lti_core.tool_config import build_lti13_tool_config
from lti_core.types import Deployment, Registration

SECURITY_SPEC = "https://www.imsglobal.org/spec/security/v1p0/"
PLATFORM_KEYS = PlatformKeyCache()  # one per process: it must outlive requests and authenticator reloads


class LTI13Authenticator(LtiAuthenticator):
    """JupyterHub as an LTI 1.3 tool: learners launched from a course land signed in on their server.

    Not a subclass of ltiauthenticator's ``LTI13Authenticator``, whose traits it defines all itself:
    inheriting them would list every option twice in ``jupyterhub --help-all`` and
    ``--generate-config``. Only the class name is shared, so ``c.LTI13Authenticator`` sections apply.
    """

    login_service = "LTI 1.3"
    #: The LTI versions whose launches it accepts (what the admins' page shows).
    lti_versions: tuple[str, ...] = ("1.3",)

    issuer = Unicode(
        "",
        config=True,
        help=f"""The platform's issuer (`iss`), exactly as its tokens carry it, e.g. `https://moodle.example.org`.

        Moodle shows it as "Platform ID" in the tool's details. For several platforms use `platforms`.
        See {SECURITY_SPEC}#id-token.
        """,
    )

    client_id = SetTrait(
        trait=Unicode(),
        config=True,
        help="""The client ID(s) the platform gave this hub when the tool was registered.

        A str or a set of str; each (issuer, client_id) pair is one registration. A launch whose token is
        not addressed (`aud`, `azp`) to one of them is refused.
        """,
    )

    authorize_url = Unicode(
        "",
        config=True,
        help="""The platform's OIDC authentication request URL (Moodle: `.../mod/lti/auth.php`).

        The hub sends the browser there during the login initiation of every launch
        (https://www.imsglobal.org/spec/security/v1p0/#step-2-authentication-request).
        """,
    )

    jwks_endpoint = Unicode(
        "",
        config=True,
        help="""The platform's public key set URL (Moodle: `.../mod/lti/certs.php`).

        Fetched without blocking the hub, cached as its Cache-Control allows (5 minutes without one),
        and fetched again at once when a launch is signed with a key it does not list yet
        (https://www.imsglobal.org/spec/security/v1p0/#h_key-set-url).
        """,
    )

    token_url = Unicode(
        "",
        config=True,
        help="""The platform's OAuth 2 access token URL (Moodle: `.../mod/lti/token.php`).

        Not needed for launches; the grade (AGS) and roster (NRPS) services use it
        (https://www.imsglobal.org/spec/security/v1p0/#using-json-web-tokens-with-oauth-2-0-client-credentials-grant).
        """,
    )

    jwks_algorithms = ListTrait(
        default_value=[SIGNING_ALGORITHM],
        config=True,
        help="""Accepted for configs written for jupyterhub-ltiauthenticator, and otherwise ignored.

        LTI 1.3 requires RS256, and only RS256 is accepted: "none", HMAC and other algorithms are
        refused whatever this says
        (https://www.imsglobal.org/spec/security/v1p0/#authentication-response-validation).
        The hub logs a warning when it lists anything but RS256, or leaves RS256 out.
        """,
    )

    deployment_ids = ListTrait(
        Unicode(),
        config=True,
        help="""The deployment IDs this hub accepts from the platform (Moodle shows "Deployment ID").

        Empty (default, as jupyterhub-ltiauthenticator has no such setting): every deployment of the
        registered client is accepted. Listing them refuses launches from placements you did not set up
        (https://www.imsglobal.org/spec/lti/v1p3/#lti-deployment-id-claim).
        """,
    )

    platforms: ListTrait[dict[str, Any]] = ListTrait(
        config=True,
        help="""More platforms, each a dict with `issuer`, `client_id`, `authorize_url`, `jwks_endpoint`, and
        optionally `token_url`, `deployment_ids` (list) and `name`. Users of different platforms never
        share a hub user, even with the same `sub` or email.
        """,
    )

    username_key = Unicode(
        "",
        config=True,
        help="""Claim of the launch token whose value becomes the hub username, e.g. `email` or `given_name`;
        `custom_<name>` reads `<name>` from the custom claim
        (https://www.imsglobal.org/spec/lti/v1p3/#custom-properties-and-variable-substitution).

        Empty (default): a name that cannot collide across platforms, the user's given name plus a hash of
        (issuer, sub), such as `sam_3f2a9c01b4`. Whatever the key, the first launch links the platform
        user to the hub user for good: the same person always lands as the same user, and a name already
        linked to someone else (or a hub admin's) gets a short hash appended instead of being shared.
        """,
    )

    time_leeway = Float(
        10.0,
        config=True,
        help="""Seconds of clock difference allowed when checking the token's `exp` and `iat`
        (https://www.imsglobal.org/spec/security/v1p0/#id-token).""",
    )

    tool_name = Unicode(
        "JupyterHub", config=True, help="Tool name shown in the configuration JSON at /hub/lti13/config."
    )

    tool_description = Unicode(
        "Launch interactive Jupyter Notebooks with JupyterHub",  # jupyterhub-ltiauthenticator's, as it spells it
        config=True,
        help="Tool description shown in the configuration JSON at /hub/lti13/config.",
    )

    approve_registrations = Bool(
        True,
        config=True,
        help="""Make platforms that register the hub themselves wait for a hub admin's approval.

        A platform admin registers the hub with LTI Dynamic Registration by giving the platform the
        hub's registration URL, `https://hub.example.org/hub/lti13/register`
        (https://www.imsglobal.org/spec/lti-dr/v1p0). True (default): the new registration is saved
        pending, its launches are refused (`registration_pending`) until a hub admin approves it on
        `/hub/lti13/registrations`. False: anyone who can reach that URL from a platform they control
        gets launches accepted at once; only for hubs that are not reachable from the internet.
        Registrations saved this way stay in the LTI store across restarts; the platforms of the hub
        config (`issuer`, `platforms`) are always as the config says.
        """,
    )

    @default("platforms")
    def _platforms_default(self) -> list[dict[str, Any]]:
        return []

    @observe("jwks_algorithms")
    def _warn_ignored_jwks_algorithms(self, change: dict[str, Any]) -> None:
        ignored = [algorithm for algorithm in change["new"] if algorithm != SIGNING_ALGORITHM]
        if ignored and SIGNING_ALGORITHM in change["new"]:  # if it is missing, save_configured_platforms says so
            self.log.warning("LTI 1.3 accepts %s only; %r in jwks_algorithms is ignored", SIGNING_ALGORITHM, ignored)

    # -- wiring ----------------------------------------------------------------------------------

    _key_loader: PlatformKeyLoader | None = None

    def callback_url(self, base_url: str) -> str:
        return str(url_path_join(base_url, "lti13", "oauth_callback"))

    def config_json_url(self, base_url: str) -> str:
        """The tool configuration JSON, where jupyterhub-ltiauthenticator served it."""
        return str(url_path_join(base_url, "lti13", "config"))

    def protocol_handlers(self) -> list[tuple[str, Any]]:
        return [
            ("/lti13/oauth_login", LTI13LoginHandler),
            ("/lti13/oauth_callback", LTI13LaunchHandler),
            ("/lti13/jwks", LTI13JwksHandler),
            ("/lti13/config", LTI13ConfigHandler),
            ("/lti13/register", LTI13RegistrationHandler),
            ("/lti13/registrations", LTI13RegistrationsHandler),
        ]

    def configured_registrations(self) -> list[Registration]:
        entries: list[dict[str, Any]] = []
        if self.issuer:
            for client_id in sorted(self.client_id):
                entries.append(
                    {
                        "issuer": self.issuer,
                        "client_id": client_id,
                        "authorize_url": self.authorize_url,
                        "jwks_endpoint": self.jwks_endpoint,
                        "token_url": self.token_url,
                        "deployment_ids": list(self.deployment_ids),
                    }
                )
        entries.extend(self.platforms)
        registrations = []
        for entry in entries:
            deployment_ids = [str(d) for d in entry.get("deployment_ids") or ()]
            registrations.append(
                Registration(
                    issuer=str(entry["issuer"]),
                    client_id=str(entry["client_id"]),
                    auth_login_url=str(entry["authorize_url"]),
                    auth_token_url=str(entry.get("token_url", "")),
                    key_set_url=str(entry["jwks_endpoint"]),
                    deployments=tuple(Deployment(d) for d in deployment_ids),
                    name=str(entry.get("name", "")),
                    any_deployment=not deployment_ids,
                )
            )
        return registrations

    def save_configured_platforms(self) -> None:
        if SIGNING_ALGORITHM not in self.jwks_algorithms:
            self.log.warning(
                "LTI 1.3 requires %s; jwks_algorithms=%r is ignored", SIGNING_ALGORITHM, self.jwks_algorithms
            )
        # Each configured (issuer, client_id) is saved as the config says, active. Registrations made
        # by dynamic registration have client_ids of their own: this leaves them as they are
        # (pending, approved or disabled), since it writes only the configured keys.
        for registration in self.configured_registrations():
            self.store.save_registration(registration)
            if registration.any_deployment:
                self.log.warning(
                    "LTI 1.3 platform %s (client %s) accepts every deployment: set deployment_ids to restrict it",
                    registration.issuer,
                    registration.client_id,
                )

    @property
    def key_loader(self) -> PlatformKeyLoader:
        if self._key_loader is None:
            self._key_loader = PlatformKeyLoader(PLATFORM_KEYS)
        return self._key_loader

    # -- the protocol, through lti_core ---------------------------------------------------------

    def redirect_uri(self, handler: Any) -> str:
        return self.hub_url(handler, "lti13", "oauth_callback")

    async def begin_login(self, handler: Any, params: dict[str, str]) -> LoginRedirect:
        """The login initiation: the handler read here, on the loop; the state saved in the store's threads."""
        login = OidcLogin(
            self.store, tool_base_urls=[self.public_base_url(handler)], redirect_uri=self.redirect_uri(handler)
        )
        return await self.off_loop(login.begin, params)

    async def authenticate(self, handler: Any, data: dict[str, Any] | None = None) -> dict[str, Any]:
        data = data or {}
        if isinstance(data.get(FINISHED_PROMPT), PromptOutcome):
            return await self.finish_prompt(handler, data[FINISHED_PROMPT])
        validator = LaunchValidator(
            self.store,
            self.key_loader.keys,
            tool_base_urls=[self.public_base_url(handler)],
            redirect_uri=self.redirect_uri(handler),
            leeway=self.time_leeway,
            # Deep linking ("Select content"): the instructor picks from the catalog (jupyter_lti.deep_linking).
            message_types=(RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST),
        )
        id_token, state = str(data.get("id_token", "")), str(data.get("state", ""))
        browser = data.get("browser")
        if not isinstance(browser, BrowserEvidence):
            browser = BrowserEvidence()  # a caller that read no evidence proves nothing
        # The store's reads and the signature check in the store's threads; the key set fetch (if the
        # key is not cached yet) on the loop, with tornado's async client.
        await self.key_loader.load(await self.off_loop(validator.key_set_to_fetch, id_token, state))
        verified = await self.off_loop(validator.check, id_token, state, browser)
        return await self.sign_in_verified(handler, verified.launch, functools.partial(validator.commit, verified))

    _tool_key_lock = threading.Lock()

    def tool_jwks(self) -> dict[str, Any]:
        """The tool's public keys. Called in the store's threads: the lock keeps the first requests,
        racing, from making a key each. Keys whose overlap after a rotation is over leave the set now."""
        now = time.time()
        with self._tool_key_lock:
            self.tool_keys.retire_due(now)
            self.tool_keys.ensure_key(now)
        return self.tool_keys.jwks(now)

    def registration_tool(self, handler: Any) -> ToolDescription:
        """The hub as it registers itself with a platform (LTI Dynamic Registration)."""
        return ToolDescription(
            name=self.tool_name,
            description=self.tool_description,
            initiate_login_uri=self.hub_url(handler, "lti13", "oauth_login"),
            redirect_uri=self.redirect_uri(handler),
            target_link_uri=self.redirect_uri(handler),
            jwks_uri=self.hub_url(handler, "lti13", "jwks"),
        )

    def lti13_config(self, handler: Any) -> dict[str, Any]:
        """What a platform admin pastes or reads: every URL of this hub's tool registration."""
        return build_lti13_tool_config(
            title=self.tool_name,
            description=self.tool_description,
            login_url=self.hub_url(handler, "lti13", "oauth_login"),
            redirect_uri=self.redirect_uri(handler),
            target_link_uri=self.redirect_uri(handler),
            jwks_url=self.hub_url(handler, "lti13", "jwks"),
        )
