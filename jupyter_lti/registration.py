"""LTI Dynamic Registration on the hub: GET /hub/lti13/register, and the admins' page of registrations.

``LTI13RegistrationHandler`` is what a platform admin gives the platform: lti_core builds the
requests and reads the answers, ``TornadoTransport`` sends them without blocking the hub's loop, and
the registration is saved in the store's threads, pending until a hub admin approves it on
``/hub/lti13/registrations`` (``LTI13Authenticator.approve_registrations``), or active at once.
Refusals are the LTI error page, and nothing is saved for them.

``LTI13RegistrationsHandler`` is that page: hub admins only, JupyterHub forms with their ``_xsrf``
token (it is no platform-facing endpoint, so the hub's XSRF check stays). Per registration: approve,
disable, add and remove deployment IDs, accept new deployments or only the listed ones; per LTI 1.1
consumer (never its secret): enable, disable. Each change is in the store at once, so the next
launch sees it, without a restart; the rules of each change are lti_core's (``lti_core.admin``).
Registrations from the hub config are shown but not changed here: the config says what they are, at
every start.
"""

from __future__ import annotations

import html
from typing import Any

from tornado import web

from jupyter_lti.handlers import LtiHandler, LtiPages
from jupyter_lti.http import TornadoTransport
from jupyter_lti.linking import ADMIN_LINKS_TITLE
from jupyter_lti.outbox_admin import TITLE as OUTBOX_TITLE
from lti_core import admin, pages
from lti_core.errors import InvalidRequest, LtiError
from lti_core.i18n import N_
from lti_core.registration import (
    build_configuration_request,
    build_registration_request,
    initial_status,
    parse_platform_configuration,
    parse_registration_initiation,
    parse_registration_response,
    save_dynamic_registration,
    set_registration_status,
)
from lti_core.store import ConsumerStore
from lti_core.types import Registration, RegistrationStatus
from lti_publish_assets import static_text

ISSUER_IS_CONSUMER_KEY = N_(
    "This platform's issuer is also the key of an LTI 1.1 consumer of this hub. Give the consumer another key "
    "first: the users of the two would be taken for one another."
)


def refuse_issuer_of_a_consumer(store: ConsumerStore, issuer: str) -> None:
    """Links are keyed by (platform, platform user id), the platform an issuer or a consumer key:
    an issuer spelled as a consumer key would make an LTI 1.1 user and an LTI 1.3 user one hub user."""
    if store.get_consumer(issuer) is not None:
        raise InvalidRequest("issuer_is_consumer_key", ISSUER_IS_CONSUMER_KEY, detail=issuer[:80])


def save_registration_checked(store: Any, registration: Registration) -> Registration:
    """``save_dynamic_registration``, unless the issuer is an LTI 1.1 consumer's key."""
    refuse_issuer_of_a_consumer(store, registration.issuer)
    return save_dynamic_registration(store, registration)


def save_manual_checked(store: Any, entry: admin.ManualRegistration) -> Registration:
    """``admin.save_manual_registration``, unless the issuer is an LTI 1.1 consumer's key."""
    refuse_issuer_of_a_consumer(store, entry.issuer.strip())
    return admin.save_manual_registration(store, entry)


class LTI13RegistrationHandler(LtiHandler):
    """The tool's registration URL: the platform opens it with ``openid_configuration`` and
    ``registration_token``; the answer is the page that tells the platform's window it is done."""

    flow = pages.REGISTRATION

    async def get(self) -> None:
        params = {name: self.get_argument(name) for name in self.request.arguments}
        try:
            page = await self.register(params)
        except LtiError as error:
            self.refuse(error)
            return
        self.finish_page(page)

    async def register(self, params: dict[str, str]) -> pages.RegistrationCompletePage:
        authenticator = self.authenticator
        initiation = parse_registration_initiation(params)
        transport = TornadoTransport()
        answer = await transport.send(build_configuration_request(initiation))
        platform = parse_platform_configuration(answer, initiation.openid_configuration)
        tool = authenticator.registration_tool(self)
        answer = await transport.send(build_registration_request(platform, tool, initiation.registration_token))
        registration = parse_registration_response(
            answer, platform, initial_status(authenticator.approve_registrations)
        )
        saved = await authenticator.off_loop(save_registration_checked, authenticator.store, registration)
        self.log.info(
            "LTI 1.3 dynamic registration: %s client %s (%s)", saved.issuer, saved.client_id, saved.status.value
        )
        return pages.registration_complete_page(saved)


TITLE = N_("LTI platform registrations")
INTRO = N_(
    "Platforms that registered this hub by LTI Dynamic Registration wait for your approval before "
    "their launches are accepted. Platforms from the hub's configuration are changed there."
)
PLATFORMS_HEADING = N_("LTI 1.3 platforms")
CONSUMERS_HEADING = N_("LTI 1.1 consumers")
CONSUMERS_INTRO = N_(
    "Consumers from the hub's configuration keep their key and secret from it; a consumer disabled "
    "here stays disabled across restarts. Secrets are never shown."
)
ISSUER_LABEL = N_("Issuer")
CLIENT_ID_LABEL = N_("Client ID")
STATUS_LABEL = N_("Status")
DEPLOYMENTS_LABEL = N_("Deployments")
ACTIONS_LABEL = N_("Actions")
APPROVE_LABEL = N_("Approve")
DISABLE_LABEL = N_("Disable")
ENABLE_LABEL = N_("Enable")
REMOVE_LABEL = N_("Remove")
ADD_DEPLOYMENT_LABEL = N_("Add deployment")
DEPLOYMENT_ID_LABEL = N_("Deployment ID")
ACCEPT_NEW_LABEL = N_("Accept new deployments")
LISTED_ONLY_LABEL = N_("Accept listed deployments only")
ACCEPTS_NEW = N_("New deployments are accepted.")
LISTED_ONLY = N_("Only the listed deployments are accepted.")
NO_DEPLOYMENT = N_("No deployment is listed.")
FROM_CONFIG = N_("From the hub's configuration")
NONE_REGISTERED = N_("No LTI 1.3 platform is registered.")
KEY_LABEL = N_("Consumer key")
NAME_LABEL = N_("Name")
NO_CONSUMER = N_("No LTI 1.1 consumer is known.")
STATUS_NAMES = {
    RegistrationStatus.ACTIVE: N_("Active"),
    RegistrationStatus.PENDING: N_("Waiting for approval"),
    RegistrationStatus.DISABLED: N_("Disabled"),
}
CONSUMER_STATUS_NAMES = {True: N_("Enabled"), False: N_("Disabled")}
#: What each button of the page does: a registration's status...
ACTIONS = {"approve": RegistrationStatus.ACTIVE, "disable": RegistrationStatus.DISABLED}
#: ... its deployments ...
DEPLOYMENT_ACTIONS = ("add_deployment", "remove_deployment", "accept_new_deployments", "listed_deployments_only")
#: ... and whether an LTI 1.1 consumer's launches are accepted.
CONSUMER_ACTIONS = {"enable_consumer": True, "disable_consumer": False}
#: The form that registers a platform by hand: its fields, as platforms show them.
ADD_PLATFORM_HEADING = N_("Register a platform by hand")
ADD_PLATFORM_INTRO = N_(
    "For a platform that cannot register the hub by itself: copy these from the tool's details on the "
    "platform (Moodle: View configuration details). Deployment IDs: one or more, separated by commas."
)
ADD_PLATFORM_LABEL = N_("Register")
MANUAL_FIELDS = (
    ("issuer", N_("Platform ID (issuer)")),
    ("client_id", N_("Client ID")),
    ("auth_login_url", N_("Authentication request URL")),
    ("key_set_url", N_("Public keyset URL")),
    ("auth_token_url", N_("Access token URL")),
    ("deployment_ids", N_("Deployment IDs")),
)


def lti_versions(authenticator: Any) -> tuple[str, ...]:
    """The LTI versions the hub's authenticator accepts: which parts the page has."""
    return tuple(getattr(authenticator, "lti_versions", ("1.3",)))


class LTI13RegistrationsHandler(LtiPages):
    """Hub admins approve or disable the platforms' registrations here, add and remove their
    deployments, and turn LTI 1.1 consumers on and off: in the store, so without a restart.
    Its forms keep the hub's ``_xsrf`` check (``LtiPages``, unlike ``LtiHandler``, leaves it on)."""

    def require_admin(self) -> None:
        if not getattr(self.current_user, "admin", False):
            raise web.HTTPError(403, "Only hub admins manage LTI registrations")

    def configured(self) -> set[tuple[str, str]]:
        return {(r.issuer, r.client_id) for r in self.authenticator.configured_registrations()}

    @web.authenticated
    async def get(self) -> None:
        self.require_admin()
        authenticator = self.authenticator
        versions = lti_versions(authenticator)
        store = authenticator.store
        registrations = await authenticator.off_loop(store.list_registrations) if "1.3" in versions else None
        consumers = await authenticator.off_loop(store.list_consumers) if "1.1" in versions else None
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            self.page_html(
                registrations,
                None if consumers is None else [admin.consumer_summary(c) for c in consumers],
            )
        )

    @web.authenticated
    async def post(self) -> None:
        self.require_admin()
        action = self.get_body_argument("action", "")
        versions = lti_versions(self.authenticator)
        try:
            if action in CONSUMER_ACTIONS and "1.1" in versions:
                await self.change_consumer(self.get_body_argument("key", ""), CONSUMER_ACTIONS[action])
            elif action == "add_platform" and "1.3" in versions:
                await self.add_platform()
            elif (action in ACTIONS or action in DEPLOYMENT_ACTIONS) and "1.3" in versions:
                await self.change_registration(action)
            else:
                raise web.HTTPError(400, "Unknown action")
        except LtiError as error:
            self.refuse(error)
            return
        self.redirect(self.request.path)

    async def change_registration(self, action: str) -> None:
        issuer = self.get_body_argument("issuer", "")
        client_id = self.get_body_argument("client_id", "")
        if (issuer, client_id) in self.configured():
            raise web.HTTPError(400, "This registration is set in the hub's configuration")
        authenticator, store = self.authenticator, self.authenticator.store
        if action in ACTIONS:
            status = ACTIONS[action]
            try:
                await authenticator.off_loop(set_registration_status, store, issuer, client_id, status)
            except LtiError as error:
                raise web.HTTPError(404, "No such registration") from error
            change = f"set {status.value}"
        elif action == "add_deployment":
            deployment_id = self.get_body_argument("deployment_id", "").strip()
            await authenticator.off_loop(admin.add_deployments, store, issuer, client_id, [deployment_id])
            change = f"deployment {deployment_id!r} added"
        elif action == "remove_deployment":
            deployment_id = self.get_body_argument("deployment_id", "")
            await authenticator.off_loop(admin.remove_deployment, store, issuer, client_id, deployment_id)
            change = f"deployment {deployment_id!r} removed"
        else:
            accept = action == "accept_new_deployments"
            await authenticator.off_loop(admin.set_accept_new_deployments, store, issuer, client_id, accept)
            change = "accepts new deployments" if accept else "accepts listed deployments only"
        self.log.info("LTI 1.3 registration %s client %s: %s by %s", issuer, client_id, change, self.current_user.name)

    async def add_platform(self) -> None:
        """Register (or update) a platform from the form: lti_core's rules normalise and check it."""
        values = {name: self.get_body_argument(name, "") for name, _ in MANUAL_FIELDS}
        entry = admin.ManualRegistration(
            issuer=values["issuer"],
            client_id=values["client_id"],
            auth_login_url=values["auth_login_url"],
            auth_token_url=values["auth_token_url"],
            key_set_url=values["key_set_url"],
            deployment_ids=tuple(d.strip() for d in values["deployment_ids"].split(",") if d.strip()),
        )
        authenticator = self.authenticator
        saved = await authenticator.off_loop(save_manual_checked, authenticator.store, entry)
        who = self.current_user.name
        self.log.info("LTI 1.3 platform %s client %s registered by hand by %s", saved.issuer, saved.client_id, who)

    async def change_consumer(self, key: str, enabled: bool) -> None:
        authenticator = self.authenticator
        await authenticator.off_loop(admin.set_consumer_enabled, authenticator.store, key, enabled)
        self.log.info("LTI 1.1 consumer %s %s by %s", key, "enabled" if enabled else "disabled", self.current_user.name)

    def refuse(self, error: LtiError) -> None:
        """The page's refusal: lti_core's page, with the reason code, in the admin's language."""
        self.log.info("LTI admin change refused: %s %s", error.reason, error.detail)
        login_url = self.authenticator.hub_url(self, "lti13", "oauth_login")
        self.finish_page(pages.refusal_page(error, login_url, pages.ADMIN))

    # -- the page ------------------------------------------------------------------------------

    def form(self, fields: dict[str, str], inner: str) -> str:
        """One of the page's forms: the hub's _xsrf token, hidden ``fields``, then ``inner``."""
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">' for name, value in fields.items()
        )
        return f'<form method="post">{self.xsrf_form_html()}{hidden}{inner}</form>'

    def button(self, action: str, label: str) -> str:
        return f'<button type="submit" name="action" value="{action}">{html.escape(self.gettext(label))}</button>'

    @staticmethod
    def table(headings: list[str], rows: list[str]) -> str:
        return (
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in headings)
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )

    def page_html(self, registrations: list[Registration] | None, consumers: list[Any] | None) -> str:
        _ = self.gettext
        parts = [f"<p>{html.escape(_(INTRO))}</p>"] if registrations is not None else []
        base = html.escape(self.hub.base_url)
        parts.append(f'<p><a href="{base}lti/grades">{html.escape(_(OUTBOX_TITLE))}</a></p>')
        parts.append(f'<p><a href="{base}lti/admin/links">{html.escape(_(ADMIN_LINKS_TITLE))}</a></p>')
        if registrations is not None:
            configured = self.configured()
            rows = [self.row_html(r, (r.issuer, r.client_id) in configured) for r in registrations]
            headings = [_(h) for h in (ISSUER_LABEL, CLIENT_ID_LABEL, STATUS_LABEL, DEPLOYMENTS_LABEL, ACTIONS_LABEL)]
            parts.append(f'<h2 id="platforms">{html.escape(_(PLATFORMS_HEADING))}</h2>')
            parts.append(self.table(headings, rows) if rows else f"<p>{html.escape(_(NONE_REGISTERED))}</p>")
            parts.append(self.add_platform_html())
        if consumers is not None:
            parts.append(f'<h2 id="consumers">{html.escape(_(CONSUMERS_HEADING))}</h2>')
            parts.append(f"<p>{html.escape(_(CONSUMERS_INTRO))}</p>")
            rows = [self.consumer_row_html(c) for c in consumers]
            headings = [_(h) for h in (KEY_LABEL, NAME_LABEL, STATUS_LABEL, ACTIONS_LABEL)]
            parts.append(self.table(headings, rows) if rows else f"<p>{html.escape(_(NO_CONSUMER))}</p>")
        return (
            f'<!DOCTYPE html><html lang="{html.escape(self.language)}"><head><meta charset="utf-8">'
            f"<title>{html.escape(_(TITLE))}</title><style>{static_text('css/lti_publish.css')}</style></head>"
            f'<body><main class="lti-registrations"><h1>{html.escape(_(TITLE))}</h1>'
            f"{''.join(parts)}</main></body></html>"
        )

    def add_platform_html(self) -> str:
        _ = self.gettext
        fields = "".join(
            f'<p><label>{html.escape(_(label))} <input name="{name}" '
            f'{"" if name == "deployment_ids" else "required "}maxlength="{admin.MAX_URL_LENGTH}"></label></p>'
            for name, label in MANUAL_FIELDS
        )
        form = self.form({}, fields + self.button("add_platform", ADD_PLATFORM_LABEL))
        heading = f'<h2 id="add-platform">{html.escape(_(ADD_PLATFORM_HEADING))}</h2>'
        return heading + f"<p>{html.escape(_(ADD_PLATFORM_INTRO))}</p>" + form

    def row_html(self, registration: Registration, from_config: bool) -> str:
        _ = self.gettext
        if from_config:
            actions = html.escape(_(FROM_CONFIG))
            deployments = html.escape(admin.deployment_summary(registration))
        else:
            key = {"issuer": registration.issuer, "client_id": registration.client_id}
            buttons = [
                self.button(action, label)
                for action, label, status in (
                    ("approve", APPROVE_LABEL, RegistrationStatus.ACTIVE),
                    ("disable", DISABLE_LABEL, RegistrationStatus.DISABLED),
                )
                if registration.status is not status
            ]
            actions = self.form(key, "".join(buttons))
            deployments = self.deployments_html(registration, key)
        status = html.escape(_(STATUS_NAMES[registration.status]))
        cells: list[Any] = [
            f"<code>{html.escape(registration.issuer)}</code>",
            f"<code>{html.escape(registration.client_id)}</code>",
            f'<span data-status="{registration.status.value}">{status}</span>',
            deployments,
            actions,
        ]
        return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"

    def deployments_html(self, registration: Registration, key: dict[str, str]) -> str:
        """A registration's deployments, each with its Remove button; a field to add one; the switch
        that accepts new deployments (``Registration.any_deployment``)."""
        _ = self.gettext
        listed = [
            f'<li data-deployment="{html.escape(d.deployment_id)}"><code>{html.escape(d.deployment_id)}</code> '
            + self.form({**key, "deployment_id": d.deployment_id}, self.button("remove_deployment", REMOVE_LABEL))
            + "</li>"
            for d in registration.deployments
        ]
        label = html.escape(_(DEPLOYMENT_ID_LABEL))
        add = self.form(
            key,
            f'<label>{label} <input name="deployment_id" required maxlength="{admin.MAX_ID_LENGTH}"></label>'
            + self.button("add_deployment", ADD_DEPLOYMENT_LABEL),
        )
        any_deployment = registration.any_deployment
        switch = self.form(
            key,
            f'<span data-any-deployment="{str(any_deployment).lower()}">'
            f"{html.escape(_(ACCEPTS_NEW if any_deployment else LISTED_ONLY))}</span> "
            + self.button(
                "listed_deployments_only" if any_deployment else "accept_new_deployments",
                LISTED_ONLY_LABEL if any_deployment else ACCEPT_NEW_LABEL,
            ),
        )
        items = f"<ul>{''.join(listed)}</ul>" if listed else f"<p>{html.escape(_(NO_DEPLOYMENT))}</p>"
        return items + add + switch

    def consumer_row_html(self, consumer: Any) -> str:
        """An LTI 1.1 consumer (``admin.ConsumerSummary``: never its secret) and its switch."""
        _ = self.gettext
        enabled = bool(consumer.enabled)
        button = self.button(
            "disable_consumer" if enabled else "enable_consumer", DISABLE_LABEL if enabled else ENABLE_LABEL
        )
        cells = [
            f"<code>{html.escape(consumer.key)}</code>",
            html.escape(consumer.name),
            f'<span data-enabled="{str(enabled).lower()}">{html.escape(_(CONSUMER_STATUS_NAMES[enabled]))}</span>',
            self.form({"key": consumer.key}, button),
        ]
        return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


__all__ = ["LTI13RegistrationHandler", "LTI13RegistrationsHandler"]
