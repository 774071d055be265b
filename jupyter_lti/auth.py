"""What the LTI 1.1 and LTI 1.3 authenticators share: the store, usernames, the auth model, landing.

Every protocol decision is lti_core's; this module only turns a verified ``Launch`` into what
JupyterHub wants from an authenticator (a name, ``auth_state``, admin and group changes) and
knows the hub's public address, also behind a reverse proxy.

The store is synchronous (SQLAlchemy) and the hub one event loop: a slow database (or SQLite's lock,
waited on for up to 20 s) must not stall every other request. So every call that reaches the store
runs in a small pool of threads the authenticator owns (``off_loop``), awaited by the handler. What
stays on the loop: the request handler, the hub's allow and block lists (``check_allowed`` may be
async) and JupyterHub's ORM (``handler.find_user``), which is not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import urlsplit

from jupyterhub.auth import Authenticator
from jupyterhub.traitlets import EntryPointType
from jupyterhub.utils import maybe_future, url_path_join
from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler
from traitlets import (
    Bool,
    CaselessStrEnum,
    Dict,
    Float,
    Integer,
    List,
    TraitError,
    Unicode,
    default,
    observe,
    validate,
)

from jupyter_lti import frames
from jupyter_lti.deep_linking import (
    CATALOG_CUSTOM_KEY,
    CatalogItem,
    begin_picking,
    catalog_landing,
    deep_linking_handlers,
    find_item,
    parse_catalog,
)
from jupyter_lti.handlers import CONTINUE_PATH, LinkPromptRequired, LtiContinueHandler, LtiInfoHandler
from jupyter_lti.http import TornadoTransport
from jupyter_lti.linking import linking_handlers
from jupyter_lti.outbox_admin import OutboxAdminHandler
from jupyter_lti.scores import SCORE_SCOPE, GradeSync, ScoresAPIHandler, define_score_scope
from jupyter_lti.store import SqlAlchemyStore, default_store_url, describe_url
from lti_core import frames as core_frames
from lti_core.deep_linking import validate_deep_linking_launch
from lti_core.errors import Forbidden, NotFound
from lti_core.forwarded import (
    ReceivedRequest,
    TrustedProxies,
    as_received_by_appending_proxy,
    public_origin,
    trusted_networks,
)
from lti_core.grades import AsyncGradeWorker
from lti_core.handover import SessionHandover
from lti_core.i18n import N_
from lti_core.landing import landing
from lti_core.linking import (
    AccountLinker,
    LinkDecision,
    LinkOutcome,
    NamePlan,
    ProvisioningMode,
    ProvisioningModes,
    choose_username,
    safe_username,
)
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.prompt import PendingLaunch, PromptAction, PromptFlow, PromptOutcome, PromptSecrets
from lti_core.roles import DEFAULT_ROLES, RoleTable
from lti_core.sealing import FernetSealer, fernet_key
from lti_core.types import Launch, Registration, RegistrationStatus, Role, launch_context

# Paths that start or end a launch: landing there again would loop.
_LAUNCH_PATHS = ("hub/lti/", "hub/lti11/", "hub/lti13/")
# What the deprecated trust_forwarded_headers = True means now: the proxies on this machine.
_LOOPBACK = ("127.0.0.0/8", "::1")
#: Threads per authenticator for the store's calls: enough for a few launches to overlap their
#: queries, few enough that a stalled database ties up a handful of connections, not one per request.
STORE_THREADS = 4
#: The provisioning modes' names in the config (``lti_core.linking.ProvisioningMode``'s values).
MODE_NAMES = tuple(mode.value for mode in ProvisioningMode)
_MOODLE_DEFAULTS = ProvisioningModes()

P = ParamSpec("P")
T = TypeVar("T")


class OptionalAuthenticatorClass(EntryPointType):  # type: ignore[misc]
    """An authenticator class by entry point name or dotted path, or None (`--generate-config` then
    writes None: traitlets' ``Type`` cannot say a None default)."""

    def default_value_repr(self) -> str:
        return "None" if self.default_value is None else str(super().default_value_repr())


class HubAccounts:
    """The hub's side of lti_core's username rule (``LocalAccounts``).

    The hub's users are read from JupyterHub's ORM, on the event loop (the only thread that may use it).
    """

    def __init__(self, handler: Any, *, adopt_existing: bool) -> None:
        self._handler, self._adopt_existing = handler, adopt_existing

    def username_available(self, name: str) -> bool:
        user = self._handler.find_user(name)
        # A hub user no launch has linked yet, named by the claim the admin chose (for instance one
        # jupyterhub-ltiauthenticator made), is taken over, unless it is an admin.
        return user is None or (self._adopt_existing and not user.admin)


class LtiAuthenticator(Authenticator):  # type: ignore[misc]
    """Base of the LTI authenticators: JupyterHub is the tool, a course in a learning platform the way in.

    Subclasses verify launches (LTI 1.1 or 1.3) with lti_core and call ``auth_model``.
    """

    auto_login = Bool(
        True,
        config=True,
        help="""Send visitors of /hub/login straight to the page that says to open the hub from their course.

        A hub behind an LTI authenticator has no login form: people arrive from their course, and each
        launch signs them in. False (jupyterhub-ltiauthenticator's LTI 1.3 default) shows JupyterHub's
        login page with a "Sign in with LTI 1.3" (or 1.1) button leading to that same page.
        """,
    )

    uri_scheme = CaselessStrEnum(
        ("auto", "https", "http"),
        default_value="auto",
        config=True,
        help="""Scheme of the hub's public URLs, used to check launch signatures and target links.

        "auto" (default) takes it from the request: from X-Forwarded-Proto when it comes from a proxy
        listed in `trusted_proxies`, else from the hub's own connection (plain http behind
        JupyterHub's proxy). Set "https" when the hub is served over HTTPS and `trusted_proxies` is
        not set. If `JupyterHub.public_url` is set, it wins over both.
        Why it matters: LTI 1.1 signs the exact launch URL (https://www.imsglobal.org/specs/ltiv1p1p1/implementation-guide#toc-4).
        """,
    )

    trusted_proxies = List(
        Unicode(),
        config=True,
        help="""IP addresses or CIDR networks of the proxies whose X-Forwarded-* headers are believed.

        The platform signs (LTI 1.1) or names (LTI 1.3 target_link_uri) the hub's public URL, which a
        TLS-terminating proxy hides from the hub. The simplest is to set `JupyterHub.public_url`, which
        wins over everything. Otherwise, list here both JupyterHub's own proxy as the hub sees it
        (configurable-http-proxy: 127.0.0.1 when it runs beside the hub) and the TLS-terminating proxy
        in front of it as configurable-http-proxy sees it: `["127.0.0.1"]` when both run on the hub's
        machine, the pods' network on Kubernetes. The proxy in front must set X-Forwarded-Proto and
        X-Forwarded-Host (or keep the Host header).
        Headers are believed only from a listed peer, and only the values the nearest listed proxy
        wrote (the last entry); configurable-http-proxy passes a client's X-Forwarded-Host through,
        so it counts only when the proxy in front of it is listed too. Empty (default): no header is
        believed, and the public URL is the hub's connection (http) and the Host header.
        """,
    )

    trust_forwarded_headers = Bool(
        False,
        config=True,
        help="""Deprecated: use `trusted_proxies` (or `JupyterHub.public_url`).

        It made the hub believe the first hop of X-Forwarded-Host and -Proto from anyone, so a client
        could choose the URL launches were checked against. Set True now, it trusts the proxies on
        the hub's machine only, as `trusted_proxies = ["127.0.0.0/8", "::1"]` would, and logs a
        warning.
        """,
    )

    store_url = Unicode(
        "",
        config=True,
        help="""SQLAlchemy URL of the database for LTI data: nonces, login states, platforms, user links.

        Default: an SQLite file `lti_publish.sqlite` beside the hub's own SQLite database, or, when the
        hub uses PostgreSQL or MySQL, the hub's database itself. The tables are all named
        `lti_publish_*`, apart from the hub's, so `jupyterhub upgrade-db` never touches them: they have
        migrations of their own (version table `lti_publish_alembic_version`), run when the hub starts.
        """,
    )

    store_encryption_keys = List(
        Unicode(),
        config=True,
        help="""Keys that encrypt the tool's private signing keys and the LTI 1.1 consumer secrets in the LTI store.

        Fernet keys (`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)
        or 32-byte keys in hex (`openssl rand -hex 32`), as JupyterHub takes for `JUPYTERHUB_CRYPT_KEY`. The
        first key encrypts; every key decrypts: to change keys, put the new one first and keep the old ones
        until the hub has run with it (each value is encrypted anew at its next save). Values stored before
        encryption was configured are read as they are and encrypted at their next save.

        Default: the keys of the environment variable `JUPYTERHUB_CRYPT_KEY` (`;`-separated), the ones
        JupyterHub encrypts `auth_state` with. Without any, the store keeps them unencrypted and the hub
        logs a warning. With the wrong keys, reading them fails with `store_key_mismatch`.
        """,
    )

    @default("store_encryption_keys")
    def _store_encryption_keys_default(self) -> list[str]:
        return [key.strip() for key in os.environ.get("JUPYTERHUB_CRYPT_KEY", "").split(";") if key.strip()]

    @validate("store_encryption_keys")
    def _valid_store_encryption_keys(self, proposal: dict[str, Any]) -> list[str]:
        try:
            for key in proposal["value"]:
                fernet_key(key)
        except ValueError as error:
            raise TraitError(f"store_encryption_keys: {error}") from None
        return list(proposal["value"])

    instructor_group = Unicode(
        "",
        config=True,
        help="""JupyterHub group that instructors are put in at each launch (and learners taken out of).

        Give the group rights with `c.JupyterHub.load_groups`/`load_roles`, e.g. access to the servers
        of their learners. Setting it makes the authenticator manage group membership
        (`Authenticator.manage_groups`). Who is an instructor comes from the LTI roles
        (https://www.imsglobal.org/spec/lti/v1p3/#role-vocabularies); a learner role always wins.
        Empty (default): groups are left alone.
        """,
    )

    admin_instructors = Bool(
        False,
        config=True,
        help="""Make instructors hub admins when they launch.

        Learners are never admins: a launch as a learner always clears the admin flag, so a person
        who is a learner in one course cannot keep admin rights from another.
        """,
    )

    landing_custom_key = Unicode(
        "next",
        config=True,
        help="""Custom parameter naming where a launch lands, set by the teacher on the link in the platform.

        For LTI 1.1 it is the form field `custom_<key>`; for LTI 1.3 the key in the custom claim
        (https://www.imsglobal.org/spec/lti/v1p3/#custom-properties-and-variable-substitution).
        A relative path opens in the learner's own server after it has started
        (`lab/tree/week1/intro.ipynb`); an absolute path or URL must stay within the hub, else the
        launch lands on the default page. Empty: only the link's target URL decides.
        """,
    )

    catalog = List(
        Dict(),
        config=True,
        help="""What teachers may add to their course from the hub ("Published content"): a list of dicts.

        Each item: `id` (letters, digits, `_`, `.`, `-`; unique; it names the item in the links made
        for it, so keep it once published), `title`, `path` (a notebook or folder in the user's server,
        relative to their home: `course/week1.ipynb`), optionally `git` (a repository to pull first, with
        nbgitpuller, installed in the users' image: it is cloned or updated into a folder named by the
        item's id, and `path` is within it), `branch`, and `max_score` (the points of an item a teacher
        may put in the gradebook). E.g.
        `[{"id": "week1", "title": "Week 1", "path": "course/week1.ipynb", "max_score": 10}]`.

        A teacher's "Select content" (LTI Deep Linking, or LTI 1.1 ContentItemSelectionRequest) shows the
        list; each item picked becomes a link in the course that opens it in the learner's server (the
        launch carries the custom parameter `catalog_item`, which wins over `landing_custom_key`). Only
        instructors may pick. Empty (default): the page says nothing is published, and offers Cancel.
        """,
    )

    catalog_open_prefix = Unicode(
        "lab/tree/",
        config=True,
        help="""Where a catalog item's `path` opens in the user's server: "lab/tree/" (JupyterLab, default)
        or "tree/" (Notebook 7).""",
    )

    @validate("catalog")
    def _valid_catalog(self, proposal: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            parse_catalog(proposal["value"])
        except ValueError as error:
            raise TraitError(f"catalog: {error}") from None
        return list(proposal["value"])

    @property
    def catalog_items(self) -> tuple[CatalogItem, ...]:
        """The `catalog`, checked."""
        return parse_catalog(self.catalog)

    frame_ancestors = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="""Origins of the sites that may show the hub, and the users' servers, in a frame.

        Learning platforms embed tools in a frame (Moodle's "Embed", Canvas, Open edX), but JupyterHub
        and jupyterhub-singleuser send `Content-Security-Policy: frame-ancestors 'none'`. Listed here,
        these origins replace 'none' in it (https://www.w3.org/TR/CSP3/#directive-frame-ancestors), on
        the hub's pages and, with `frame_user_servers`, on the users' servers. Each entry is an origin
        as the browser shows it, `https://moodle.example.org` (no path), a host wildcard
        `https://*.example.org`, or `'self'` (left out by default: the users' servers share the hub's
        origin, and JupyterHub keeps them from framing its pages). Every frame between the top page and
        the hub must be listed: Open edX shows LTI content in a frame of the LMS inside its learning
        app, so list both.
        Default (unset): for LTI 1.3 the origins of each platform's `issuer` and `authorize_url`, the
        configured ones and those registered dynamically and approved (as of the hub's start), which is
        right for Moodle; Canvas shows courses at your institution's address
        (`https://school.instructure.com`), not its issuer's, so list that. LTI 1.1 names no platform
        address: list them. Empty: no site may frame the hub. A Content-Security-Policy set in
        `JupyterHub.tornado_settings["headers"]` wins over this.
        """,
    )

    framed_cookies = CaselessStrEnum(
        ("auto", "on", "off"),
        default_value="auto",
        config=True,
        help="""Cookies that keep working while the hub is in a platform's frame: "auto" (default), "on", "off".

        In a frame of another site, browsers send a cookie only when it is `SameSite=None; Secure`, and
        the ones that block third-party cookies keep it only when it is also `Partitioned` (CHIPS:
        https://developer.mozilla.org/en-US/docs/Web/Privacy/Guides/Privacy_sandbox/Partitioned_cookies).
        "on" gives the hub's cookies (login, session, `_xsrf`) these attributes, through
        `JupyterHub.tornado_settings["cookie_options"]` (which JupyterHub hands to the users' servers
        too) and `xsrf_cookie_kwargs`, and, with `frame_user_servers`, the users' servers' cookies.
        "auto" is "on" when some site may frame the hub (`frame_ancestors`) and the hub's public URL
        is https: `JupyterHub.public_url`, else `uri_scheme`, else the hub's own TLS (`ssl_cert`).
        Behind a TLS proxy with only `trusted_proxies`, set `JupyterHub.public_url` or "on". Over plain
        http browsers drop `Secure` cookies: "auto" leaves the cookies as JupyterHub makes them.
        """,
    )

    frame_user_servers = Bool(
        True,
        config=True,
        help="""Make the users' servers framable as the hub is (`frame_ancestors`, `framed_cookies`).

        Each server is started with `--ServerApp.tornado_settings={...}` carrying the
        `frame-ancestors` header (jupyterhub-singleuser's default is 'none') and, with framed cookies,
        `SameSite=None; Secure` for its `_xsrf` cookie, and with
        `--ServerApp.jpserver_extensions=jupyter_lti.frames=True`, which makes its cookies
        `Partitioned`: that needs lti-publish installed where the servers run (without it the server
        logs a warning and its cookies are not partitioned). Those arguments replace a
        `ServerApp.tornado_settings` of the servers' own config files; when `Spawner.args` already
        sets one, nothing is added and the hub's log says what to add to it. False: servers start as
        configured.
        """,
    )

    grade_sync_interval = Float(
        1800.0,
        config=True,
        help=f"""Seconds between two deliveries of the grade outbox to the platforms (default 30 minutes).

        Graders submit scores to `/hub/api/lti/scores` (or with `jupyter-lti-score`), with a token that
        has the scope `{SCORE_SCOPE}`; each score is saved in the outbox of the LTI store first, then sent
        to the platform's gradebook (LTI 1.3 Assignment and Grade Services, or LTI 1.1 Basic Outcomes)
        a moment after it is accepted. Scores the platform did not take (it was down, it answered an
        error) are sent again after a backoff that grows up to an hour, and at each of these passes;
        a hub admin sees them, and retries them at once, on `/hub/lti/grades`. Grant the scope with a
        role, e.g. `c.JupyterHub.load_roles = [{{"name": "lti-graders", "scopes": ["{SCORE_SCOPE}"],
        "groups": ["instructors"]}}]` (then a grader's token, made on /hub/token, asks for that scope
        only); the authenticator defines the scope itself.
        """,
    )

    grade_sync_concurrency = Integer(
        8,
        config=True,
        help="""Scores sent to the platforms at the same time, at most (each one an HTTP request the hub awaits).

        Connections are kept open between requests when pycurl is installed (JupyterHub then makes
        tornado use curl's client); tornado's own client opens one connection per request.
        """,
    )

    allow_private_service_urls = Bool(
        False,
        config=True,
        help="""Send scores to platform services on private, loopback or link-local addresses, and over http.

        Off (default): a grade service URL from a launch must be https and name a public host of the
        platform, so a launch cannot make the hub send a platform's token or signed scores inside its
        own network. On: only for a platform on the hub's own machine or network (a demo, a test).
        """,
    )

    instructor_provisioning_mode = CaselessStrEnum(
        MODE_NAMES,
        default_value=_MOODLE_DEFAULTS.instructor.value,
        config=True,
        help="""How an instructor's first launch gets a hub user (Moodle's "Publish as LTI tool" modes).

        "new_only" (New accounts only, automatic): the launch creates a hub user and links it.
        "existing_and_new_prompt" (Existing and new accounts, prompt; the default, as Moodle's): the
        launch asks "Create a new account" or "Sign in to an existing account and link it"; linking
        goes through `local_authenticator_class`'s sign-in and a confirmation. "existing_only_prompt"
        (Existing accounts only, prompt): the person must sign in to an existing hub user; without one
        they see a page saying so, and nothing is created.
        Once made, a link is permanent: every later launch of the same platform user signs in the same
        hub user, whatever the mode. Without `local_authenticator_class` the hub has no other sign-in:
        the prompt modes then create a new user ("existing_and_new_prompt") or refuse
        ("existing_only_prompt"). Per platform: `provisioning_modes_by_platform`.
        """,
    )

    learner_provisioning_mode = CaselessStrEnum(
        MODE_NAMES,
        default_value=_MOODLE_DEFAULTS.learner.value,
        config=True,
        help="""How a learner's first launch gets a hub user: "new_only" (the default, as Moodle's),
        "existing_and_new_prompt" or "existing_only_prompt"; see `instructor_provisioning_mode`.""",
    )

    provisioning_modes_by_platform = Dict(
        config=True,
        help="""Provisioning modes for some platforms, by LTI 1.3 issuer or LTI 1.1 consumer key:
        `{"https://moodle.example.org": {"instructor": "existing_only_prompt", "learner": "new_only"}}`.

        A role left out of an entry takes `instructor_provisioning_mode` or `learner_provisioning_mode`;
        platforms not listed take both.
        """,
    )

    local_authenticator_class = OptionalAuthenticatorClass(
        default_value=None,
        klass=Authenticator,
        entry_point_group="jupyterhub.authenticators",
        allow_none=True,
        config=True,
        help="""A JupyterHub authenticator used ONLY to sign in to an existing hub user when linking it to a
        platform user (the prompt provisioning modes): "pam", "dummy", "nativeauthenticator.NativeAuthenticator"...

        Its sign-in form (username and password) is shown at `/hub/lti/link/<id>/sign-in`; its
        `get_authenticated_user` checks them, then the person confirms, and the link is made: the hub
        user must exist already (this never creates one). It is configured in its own section
        (`c.PAMAuthenticator...`). Default (None): the hub has no other sign-in, so nothing can be
        linked: the prompt modes create a new user, or refuse when only existing accounts may be used.
        """,
    )

    staff_roles = List(
        Unicode(),
        config=True,
        help="""More context roles that make a launch an instructor's (the `instructor_group`, the
        instructors' provisioning mode), beside LTI's Instructor, TeachingAssistant, ContentDeveloper and
        Administrator of the context: short names or URIs, e.g. `["Mentor"]` (Moodle's non-editing
        teacher). Only context roles other than Learner may be listed: institution roles and custom
        parameters never make a learner an instructor.
        """,
    )

    @validate("staff_roles")
    def _valid_staff_roles(self, proposal: dict[str, Any]) -> list[str]:
        try:
            DEFAULT_ROLES.extended(proposal["value"])
        except ValueError as error:
            raise TraitError(f"staff_roles: {error}") from None
        return list(proposal["value"])

    @validate("provisioning_modes_by_platform")
    def _valid_modes_by_platform(self, proposal: dict[str, Any]) -> dict[str, dict[str, str]]:
        checked: dict[str, dict[str, str]] = {}
        for platform, modes in proposal["value"].items():
            if not isinstance(modes, dict) or not set(modes) <= {"instructor", "learner"}:
                raise TraitError(f"provisioning_modes_by_platform[{platform!r}]: a dict with instructor, learner")
            wrong = [str(mode) for mode in modes.values() if mode not in MODE_NAMES]
            if wrong:
                raise TraitError(f"provisioning_modes_by_platform[{platform!r}]: {wrong} not in {list(MODE_NAMES)}")
            checked[str(platform)] = {str(role): str(mode) for role, mode in modes.items()}
        return checked

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        # Whoever a registered platform vouches for may use the hub, unless allow lists are configured.
        return not (self.allowed_users or self.allow_existing_users)

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        # The launch context (grade and roster endpoints) is kept in auth_state, which JupyterHub only
        # stores encrypted: on as soon as the hub has a crypt key.
        return bool(os.environ.get("JUPYTERHUB_CRYPT_KEY"))

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return bool(self.instructor_group)

    @validate("trusted_proxies")
    def _valid_trusted_proxies(self, proposal: dict[str, Any]) -> list[str]:
        try:
            trusted_networks(proposal["value"])
        except ValueError as error:
            raise TraitError(f"trusted_proxies: {error}") from None
        return list(proposal["value"])

    @validate("frame_ancestors")
    def _valid_frame_ancestors(self, proposal: dict[str, Any]) -> list[str] | None:
        if proposal["value"] is None:
            return None
        try:
            return [core_frames.frame_source(str(source)) for source in proposal["value"]]
        except ValueError as error:
            raise TraitError(f"frame_ancestors: {error}") from None

    @observe("trust_forwarded_headers")
    def _warn_trust_forwarded_headers(self, change: dict[str, Any]) -> None:
        meaning = "True now trusts the proxies on loopback only" if change["new"] else "False is the default"
        self.log.warning(
            "LTI: trust_forwarded_headers is deprecated (%s); set trusted_proxies or JupyterHub.public_url", meaning
        )

    @property
    def trusted(self) -> TrustedProxies:
        """The proxies whose X-Forwarded-* headers are believed."""
        return trusted_networks([*self.trusted_proxies, *(_LOOPBACK if self.trust_forwarded_headers else ())])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Before the hub loads its roles (it makes the authenticator first), so they may grant it.
        define_score_scope(self.parent)

    # -- the store -----------------------------------------------------------------------------

    _store: SqlAlchemyStore | None = None
    _hub_db_url: str = "sqlite:///jupyterhub.sqlite"

    @property
    def store(self) -> SqlAlchemyStore:
        if self._store is None:
            url = self.store_url or default_store_url(self._hub_db_url)
            sealer = FernetSealer(self.store_encryption_keys) if self.store_encryption_keys else None
            if sealer is None:
                self.log.warning(
                    "LTI: no store_encryption_keys (nor JUPYTERHUB_CRYPT_KEY): the tool's private keys and "
                    "consumer secrets are stored unencrypted"
                )
            self._store = SqlAlchemyStore(url, sealer=sealer)
            self.log.info("LTI store: %s", describe_url(url))
            self.save_configured_platforms()
        return self._store

    _store_threads: ThreadPoolExecutor | None = None
    _naming_lock: asyncio.Lock | None = None

    async def off_loop(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(*args, **kwargs)`` in the authenticator's store threads, awaited: the event loop
        serves other requests meanwhile. For whatever reaches the store (and so blocks for as long as
        the database takes): the validators' checks and commits, the login's state, links, purges."""
        _ = self.store  # opened on the loop (get_handlers does it at startup), never by two threads
        if self._store_threads is None:
            self._store_threads = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="lti-store")
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._store_threads, call)

    def save_configured_platforms(self) -> None:
        """Write the platforms (1.3) or consumers (1.1) of the hub config into the store."""

    _tool_keys: ToolKeySet | None = None

    @property
    def tool_keys(self) -> ToolKeySet:
        """The tool's signing keys (LTI 1.3 messages, AGS access token requests), in the store."""
        if self._tool_keys is None:
            self._tool_keys = ToolKeySet(self.store)
        return self._tool_keys

    # -- grade passback ------------------------------------------------------------------------

    _grade_sync: GradeSync | None = None

    @property
    def grade_sync(self) -> GradeSync:
        """The hub's grade delivery loop (``jupyter_lti.scores``), made at first use."""
        if self._grade_sync is None:
            worker = AsyncGradeWorker(
                self.store,
                TornadoTransport(),
                self.tool_keys,
                concurrency=self.grade_sync_concurrency,
                allow_private=self.allow_private_service_urls,
            )
            self._grade_sync = GradeSync(worker, self.grade_sync_interval, logger=self.log)
        return self._grade_sync

    # -- the hub's routes ----------------------------------------------------------------------

    def login_url(self, base_url: str) -> str:
        return str(url_path_join(base_url, "lti", "login"))

    def protocol_handlers(self) -> list[tuple[str, Any]]:
        """The version's own endpoints, below the hub's prefix."""
        return []

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        # The hub's database decides where the LTI store goes; open it now, not at the first launch.
        self._hub_db_url = str(getattr(app, "db_url", "") or self._hub_db_url)
        _ = self.store
        self.frame_hub(app)
        self.log_lti_core_to_hub()
        self.grade_sync.start()  # on the hub's loop, which runs JupyterHub's start-up
        return [
            ("/lti/login", LtiInfoHandler),
            ("/" + CONTINUE_PATH, LtiContinueHandler),
            ("/api/lti/scores", ScoresAPIHandler),
            ("/lti/grades", OutboxAdminHandler),
            *linking_handlers(),
            *deep_linking_handlers(),
            *self.protocol_handlers(),
        ]

    def log_lti_core_to_hub(self) -> None:
        """lti_core's records (a grade not delivered, a key set not fetched) in the hub's log:
        JupyterHub shows its own logger's records only, and parents tornado's loggers to it likewise."""
        core_log = logging.getLogger("lti_core")
        if isinstance(self.log, logging.Logger) and core_log.parent is logging.root and not core_log.handlers:
            core_log.parent = self.log

    # -- in a platform's frame -----------------------------------------------------------------

    #: What frame_hub decided at startup: the frame-ancestors sources, and whether cookies are framed.
    _frame_sources: tuple[str, ...] = ()
    _framed_cookies_on: bool = False

    def configured_registrations(self) -> list[Registration]:
        """The LTI 1.3 platforms of the hub's config (none for LTI 1.1)."""
        return []

    @property
    def configured_frame_ancestors(self) -> list[str] | None:
        """`frame_ancestors` as configured: None when unset (traitlets types it as a list)."""
        return cast("list[str] | None", self.frame_ancestors)

    def frame_sources(self) -> list[str]:
        """`frame_ancestors`, else the origins of the platforms' issuers and login URLs: the configured
        ones and, once the store is open, the active ones it holds (registered dynamically)."""
        configured = self.configured_frame_ancestors
        if configured is not None:
            return list(configured)
        registrations = self.configured_registrations()
        if self._store is not None:
            registrations += [r for r in self._store.list_registrations() if r.status is RegistrationStatus.ACTIVE]
        return core_frames.platform_origins(url for r in registrations for url in (r.issuer, r.auth_login_url))

    def public_url_is_https(self, app: Any) -> bool:
        """The hub's public URL is https, as far as the config says (`framed_cookies` "auto")."""
        public_url = str(getattr(app, "public_url", "") or "")
        if public_url:
            return urlsplit(public_url).scheme.lower() == "https"
        if self.uri_scheme != "auto":
            return bool(self.uri_scheme == "https")
        return bool(getattr(app, "ssl_cert", "")) or str(getattr(app, "bind_url", "")).startswith("https:")

    def frame_hub(self, app: Any) -> None:
        """Let the platforms frame the hub: its CSP and cookies, in the settings JupyterHub is about to
        build its tornado Application from (it calls get_handlers in between)."""
        sources = self.frame_sources()
        cookies = self.framed_cookies == "on" or (
            self.framed_cookies == "auto" and bool(sources) and self.public_url_is_https(app)
        )
        settings = getattr(app, "tornado_settings", None)
        if not isinstance(settings, dict):
            return
        hub_prefix = str(getattr(getattr(app, "hub", None), "base_url", "/hub/"))
        report_uri = str(settings.get("csp_report_uri") or url_path_join(hub_prefix, "security/csp-report"))
        for note in frames.frame_hub(settings, sources, cookies=cookies, report_uri=report_uri):
            self.log.warning("LTI frames: %s", note)
        self._frame_sources, self._framed_cookies_on = tuple(sources), cookies
        if sources:
            self.log.info(
                "LTI frames: %s; cookies %s",
                core_frames.frame_ancestors(sources),
                "SameSite=None; Secure; Partitioned" if cookies else "as JupyterHub sets them",
            )
        elif self.configured_frame_ancestors is None:
            self.log.info("LTI frames: no site may frame the hub; frame_ancestors lists the platforms that may")

    def pre_spawn_start(self, user: Any, spawner: Any) -> Any:
        """Start the user's server framable as the hub is (`frame_user_servers`)."""
        if self.frame_user_servers and (self._frame_sources or self._framed_cookies_on):
            base_url = str(getattr(getattr(spawner, "server", None), "base_url", "") or "")
            args, added, notes = frames.user_server_args(
                list(spawner.args),
                self._frame_sources,
                cookies=self._framed_cookies_on,
                base_url=base_url,
                added_before=getattr(spawner, "_lti_frame_args", ()),
            )
            spawner.args, spawner._lti_frame_args = args, added
            if self._framed_cookies_on:
                spawner.cookie_options = {**frames.FRAMED_COOKIE_OPTIONS, **(spawner.cookie_options or {})}
            for note in notes:
                self.log.warning("LTI frames, server of %s: %s", user.name, note)
        return super().pre_spawn_start(user, spawner)

    # -- public URLs ---------------------------------------------------------------------------

    def public_origin(self, handler: RequestHandler) -> str:
        """``scheme://host[:port]`` as the browser saw it: `JupyterHub.public_url`, else what the trusted
        proxies say, else the hub's connection and Host header (`trusted_proxies`)."""
        public_url = handler.settings.get("public_url")
        if public_url:
            parts = urlsplit(public_url.geturl() if hasattr(public_url, "geturl") else str(public_url))
            return f"{parts.scheme}://{parts.netloc}"
        received = received_request(handler.request)
        # The hub is always reached through JupyterHub's proxy, which appends its own hop.
        origin = public_origin(as_received_by_appending_proxy(received, self.trusted), self.trusted)
        if not self.trusted:
            self._hint_untrusted_https(received)
        scheme = origin.scheme if self.uri_scheme == "auto" else self.uri_scheme
        return f"{scheme.lower()}://{origin.host}"

    _hinted = False

    def _hint_untrusted_https(self, received: ReceivedRequest) -> None:
        """Once: JupyterHub's proxy says browsers use https, but nothing lets the hub believe it."""
        if self._hinted or self.uri_scheme != "auto" or not received.forwarded_proto.rstrip().endswith("https"):
            return
        self._hinted = True
        self.log.warning(
            "LTI: requests reach the hub's proxy over https, but launches are checked against http:// URLs: "
            "set c.JupyterHub.public_url, or c.%s.trusted_proxies to the proxies' addresses",
            type(self).__name__,
        )

    def public_base_url(self, handler: RequestHandler) -> str:
        """The hub's public root, with the hub's base_url: ``https://hub.example/prefix/``."""
        return self.public_origin(handler) + str(handler.settings.get("base_url", "/"))

    def public_request_url(self, handler: RequestHandler) -> str:
        return self.public_origin(handler) + handler.request.uri

    def hub_url(self, handler: RequestHandler, *path: str) -> str:
        """A public URL of the hub's pages: ``hub_url(handler, "lti13", "jwks")``."""
        return str(url_path_join(self.public_base_url(handler), "hub", *path))

    # -- usernames -----------------------------------------------------------------------------

    def claimed_username(self, launch: Launch) -> str:
        """The hub's form of the launch's `username_key` value, or "" when not configured or not sent."""
        if not self.username_key:
            return ""
        claimed = launch.value(self.username_key)
        if not claimed:
            self.log.warning("LTI launch has no %r; using the default username", self.username_key)
            return ""
        return str(self.normalize_username(safe_username(claimed)))[:255]

    def username_for(self, handler: Any, launch: Launch) -> str:
        """The hub user this platform identity signs in as: the same one at every launch.

        Nothing is written here: ``commit_and_link`` makes the link once the launch is committed. A name
        another identity is linked to, or a hub admin's, is never handed out: the identity gets the
        name with a short hash of itself appended instead. All on the caller's thread; ``admit``
        reads the store (``name_plan``) in the store's threads, then the hub's users on the loop.
        """
        return self.username_from(handler, launch, self.name_plan(launch))

    def name_plan(self, launch: Launch) -> NamePlan:
        """The store's part of ``username_for``: reads only the store, so it may run in any thread."""
        return AccountLinker(self.store).plan_name(launch, self.claimed_username(launch))

    def username_from(self, handler: Any, launch: Launch, plan: NamePlan) -> str:
        """The hub's part of ``username_for``: reads JupyterHub's users, so it runs on the loop. An
        unlinked non-admin hub user named by the claim the admin chose is taken over."""
        if plan.linked:
            return plan.linked
        accounts = HubAccounts(handler, adopt_existing=plan.claimed)
        return choose_username(plan.candidate, launch, accounts, plan.taken)

    def commit_and_link(
        self,
        launch: Launch,
        model: dict[str, Any],
        plan: NamePlan,
        commit: Callable[[], object],
        *,
        migrated: bool = False,
    ) -> None:
        """In the store's threads, in one hop: ``commit`` the launch (the validator's: nonce and
        state); link a new identity to ``model``'s name for good (if a racing launch of the same
        identity linked first, its name wins), and an identity found through its LTI 1.1 identity
        (``migrated``) too; keep the launch's context for that name, which grade and roster jobs read
        later, without a browser and without the hub's auth_state."""
        commit()
        if not plan.linked or migrated:
            model["name"] = AccountLinker(self.store).link(launch, model["name"]).local_user_id
        if launch.deep_linking is None:  # a request to pick content has no resource link to grade
            self.store.save_launch_context(launch_context(launch, model["name"], time.time(), launch.target_link_uri))

    async def admit(self, handler: Any, launch: Launch) -> tuple[dict[str, Any], NamePlan]:
        """The auth model of a verified launch (and what the links said), or the ``user_not_allowed`` refusal.

        JupyterHub applies its block and allow lists after ``authenticate`` returns; asked here too,
        before the launch is committed, so a launch they refuse consumes no nonce and links no one.
        """
        plan = await self.off_loop(self.name_plan, launch)
        model = self.auth_model(handler, launch, name=self.username_from(handler, launch, plan))
        await self.check_admitted(model)
        return model, plan

    async def check_admitted(self, model: dict[str, Any]) -> None:
        """The hub's block and allow lists, for the user ``model`` names."""
        name = model["name"]
        if not await maybe_future(self.check_blocked_users(name, model)) or not await maybe_future(
            self.check_allowed(name, model)
        ):
            raise Forbidden("user_not_allowed", N_("Your account is not allowed to use this hub."))

    async def sign_in_verified(self, handler: Any, launch: Launch, commit: Callable[[], object]) -> dict[str, Any]:
        """The end of ``authenticate``, once the launch passed every check: the local role by the
        hub's role table; then the linking decision (``link_decision``): a linked or new identity is
        signed in (``sign_in_linked``), a prompt is started (``LinkPromptRequired``, which the
        launch's handler answers with the prompt's page), a refusal writes nothing."""
        launch = self.role_table.apply(launch)
        self.check_target(launch)
        decision = await self.off_loop(self.link_decision, launch)
        if decision.outcome is LinkOutcome.REFUSE:
            raise Forbidden(
                decision.reason,
                N_(
                    "This hub only lets people in with an account they already have here, and has no way to "
                    "sign in to one from a launch. Please ask your teacher or the hub's administrator. "
                    "Nothing was created."
                ),
            )
        if decision.outcome is LinkOutcome.PROMPT:
            pending, secrets = await self.off_loop(self.begin_prompt, launch, decision, commit)
            raise LinkPromptRequired(pending, secrets)
        return await self.sign_in_linked(handler, launch, commit, migrated=decision.new_link)

    def check_target(self, launch: Launch) -> None:
        """Before anything is written: a request to pick content is an instructor's, and a link made
        from the catalog names an item it still has."""
        if launch.deep_linking is not None:
            validate_deep_linking_launch(launch)
        elif CATALOG_CUSTOM_KEY in launch.custom:
            find_item(self.catalog_items, launch.custom[CATALOG_CUSTOM_KEY])

    async def sign_in_linked(
        self, handler: Any, launch: Launch, commit: Callable[[], object], *, migrated: bool = False
    ) -> dict[str, Any]:
        """A linked identity, or a new one to link: ``admit`` it, then commit it, link its identity
        and keep its context (``commit_and_link``).

        A new identity's name is chosen and linked under one lock: in between, another new identity
        claiming the same name (``username_key``, from another platform) would find it free as well,
        and the two would share a hub user. Identities already linked, nearly every launch, never wait.
        """
        async with self._naming(launch):
            model, plan = await self.admit(handler, launch)
            await self.off_loop(self.commit_and_link, launch, model, plan, commit, migrated=migrated)
        return model

    # -- account linking -----------------------------------------------------------------------

    @property
    def role_table(self) -> RoleTable:
        """Which roles are an instructor's: LTI's, and the admin's `staff_roles`."""
        return DEFAULT_ROLES.extended(self.staff_roles)

    @property
    def host_can_sign_in(self) -> bool:
        """Whether the hub has a sign-in of its own to link an existing user (`local_authenticator_class`)."""
        return self.local_authenticator_class is not None

    _local_authenticator: Authenticator | None = None

    @property
    def local_authenticator(self) -> Authenticator:
        """The `local_authenticator_class`, made once, configured from the hub's config."""
        if self._local_authenticator is None:
            if self.local_authenticator_class is None:
                raise NotFound("no_local_sign_in", N_("This hub has no sign-in to link an existing account with."))
            self._local_authenticator = self.local_authenticator_class(parent=self.parent, config=self.config)
        return self._local_authenticator

    def provisioning_modes(self, platform: str) -> ProvisioningModes:
        """The modes for a platform (issuer or consumer key): its `provisioning_modes_by_platform`
        entry, else the hub's `instructor_provisioning_mode` and `learner_provisioning_mode`."""
        entry = self.provisioning_modes_by_platform.get(platform, {})
        return ProvisioningModes(
            instructor=ProvisioningMode(entry.get("instructor", self.instructor_provisioning_mode)),
            learner=ProvisioningMode(entry.get("learner", self.learner_provisioning_mode)),
        )

    def linker(self, launch: Launch) -> AccountLinker:
        return AccountLinker(self.store, self.provisioning_modes(launch.platform))

    def link_decision(self, launch: Launch) -> LinkDecision:
        """Linked, new, prompt or refused (``lti_core.linking.decide_link``). Nobody counts as signed
        in: the hub's session may come from another launch, so an existing user is linked only
        through the local sign-in, never because its cookie is in the browser."""
        return self.linker(launch).decide(launch, host_can_sign_in=self.host_can_sign_in)

    def begin_prompt(
        self, launch: Launch, decision: LinkDecision, commit: Callable[[], object]
    ) -> tuple[PendingLaunch, PromptSecrets]:
        """In the store's threads: commit the launch (its nonce is used), keep it as a pending launch."""
        commit()
        return self.prompt_flow.begin(launch, decision, launch.target_link_uri, time.time())

    @property
    def prompt_flow(self) -> PromptFlow:
        return PromptFlow(self.store)

    def session_handover(self, handler: RequestHandler) -> SessionHandover:
        """The continue step's tokens (``lti_core.handover``), keyed from the hub's cookie secret."""
        return SessionHandover(handler.settings["cookie_secret"], self.store)

    async def finish_prompt(self, handler: Any, outcome: PromptOutcome) -> dict[str, Any]:
        """A finished prompt (the pending launch is gone): create a new user as a first launch does,
        or link the existing hub user the person signed in to and confirmed."""
        launch = outcome.pending.launch
        if outcome.action is PromptAction.CREATE:
            return await self.sign_in_linked(handler, launch, lambda: None)
        name = outcome.local_user_id
        if handler.find_user(name) is None:
            raise NotFound("no_such_account", N_("The account to link no longer exists on this hub."))
        async with self._naming(launch):
            model = self.auth_model(handler, launch, name=name)
            await self.check_admitted(model)
            await self.off_loop(self.commit_and_link, launch, model, NamePlan(), lambda: None)
        return model

    @contextlib.asynccontextmanager
    async def _naming(self, launch: Launch) -> AsyncIterator[None]:
        """Held while a launch of an identity that has no link yet chooses its name and links it."""
        if await self.off_loop(self.store.get_user_link, launch.platform, launch.platform_user_id) is not None:
            yield
            return
        if self._naming_lock is None:
            self._naming_lock = asyncio.Lock()
        async with self._naming_lock:
            yield

    # -- what JupyterHub gets ------------------------------------------------------------------

    def auth_model(self, handler: Any, launch: Launch, *, name: str | None = None) -> dict[str, Any]:
        """JupyterHub's auth model for a verified launch; ``name`` already chosen, else ``username_for``."""
        staff = launch.role is Role.STAFF
        if name is None:
            name = self.username_for(handler, launch)
        model: dict[str, Any] = {"name": name, "auth_state": self.auth_state(launch)}
        if not staff:
            model["admin"] = False
        elif self.admin_instructors:
            model["admin"] = True
        if self.manage_groups:
            model["groups"] = ([self.instructor_group] if staff else []) if self.instructor_group else None
        # The handler lands the browser where the launch points, once JupyterHub has signed the user in.
        handler.lti_launch = launch
        return model

    def auth_state(self, launch: Launch) -> dict[str, Any]:
        """What later services need (grades, roster), under "lti"; beside it, the launch's own claims
        (1.3) or parameters (1.1), as jupyterhub-ltiauthenticator kept them, for existing hooks."""
        return {**launch.platform_data(), "lti": launch.summary()}

    # -- landing -------------------------------------------------------------------------------

    def landing_url(self, handler: Any, launch: Launch, user: Any) -> str:
        """Where the browser goes after the launch: a path within the hub, never anywhere else. A
        request to pick content goes to the picker (``jupyter_lti.deep_linking``, which keeps it in a
        cookie); a link made from the catalog to its item, in the user's server."""
        base_path = str(handler.settings.get("base_url", "/"))
        if launch.deep_linking is not None:
            return begin_picking(handler, str(user.name), launch)
        if CATALOG_CUSTOM_KEY in launch.custom:
            item = find_item(self.catalog_items, launch.custom[CATALOG_CUSTOM_KEY])
            opened = catalog_landing(item, self.catalog_open_prefix)
            return str(url_path_join(base_path, "hub", "user-redirect", opened))
        found = landing(
            launch,
            custom_key=self.landing_custom_key,
            public_base_url=self.public_base_url(handler),
            # A relative path is in the learner's own server: user-redirect starts it first if needed.
            relative_to=url_path_join(base_path, "hub", "user-redirect/"),
            start_paths=("", "hub", "hub/"),
            launch_prefixes=_LAUNCH_PATHS,
        )
        if found.outside:
            self.log.warning("LTI launch asked to land outside the hub; using the default page")
        return found.path or str(handler.get_next_url(user))


def received_request(request: HTTPServerRequest) -> ReceivedRequest:
    """The hub's own connection and the X-Forwarded-* headers of a request.

    JupyterHub serves with tornado's ``xheaders``, which rewrites ``remote_ip`` and ``protocol`` from
    X-Real-Ip, X-Forwarded-For and X-Scheme whoever sent them: the connection's own values are read
    from before that rewrite.
    """
    context = getattr(request.connection, "context", None)
    headers = request.headers
    return ReceivedRequest(
        scheme=str(getattr(context, "_orig_protocol", "http")),
        host=request.host,
        # Unknown (no tornado context): never a trusted proxy.
        peer=str(getattr(context, "_orig_remote_ip", "")),
        forwarded_for=headers.get("X-Forwarded-For", ""),
        forwarded_proto=headers.get("X-Forwarded-Proto", ""),
        forwarded_host=headers.get("X-Forwarded-Host", ""),
    )
