"""LTI Dynamic Registration on the hub: GET /hub/lti13/register, and the admins' page of registrations.

``LTI13RegistrationHandler`` is what a platform admin gives the platform: lti_core builds the
requests and reads the answers, ``TornadoTransport`` sends them without blocking the hub's loop, and
the registration is saved in the store's threads, pending until a hub admin approves it on
``/hub/lti13/registrations`` (``LTI13Authenticator.approve_registrations``), or active at once.
Refusals are the LTI error page, and nothing is saved for them.

``LTI13RegistrationsHandler`` is that page: hub admins only, a JupyterHub form with its ``_xsrf``
token (it is no platform-facing endpoint, so the hub's XSRF check stays). Registrations from the hub
config are shown but not changed here: the config says what they are, at every start.
"""

from __future__ import annotations

import html
from typing import Any

from jupyterhub.handlers import BaseHandler
from tornado import web

from jupyter_lti.handlers import LtiHandler
from jupyter_lti.http import TornadoTransport
from lti_core import pages
from lti_core.errors import LtiError
from lti_core.i18n import N_, preferred_language, translation
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
from lti_core.types import Registration, RegistrationStatus
from lti_publish_assets import TRANSLATIONS_DIR, static_text


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
        saved = await authenticator.off_loop(save_dynamic_registration, authenticator.store, registration)
        self.log.info(
            "LTI 1.3 dynamic registration: %s client %s (%s)", saved.issuer, saved.client_id, saved.status.value
        )
        return pages.registration_complete_page(saved)


TITLE = N_("LTI platform registrations")
INTRO = N_(
    "Platforms that registered this hub by LTI Dynamic Registration wait for your approval before "
    "their launches are accepted. Platforms from the hub's configuration are changed there."
)
ISSUER_LABEL = N_("Issuer")
CLIENT_ID_LABEL = N_("Client ID")
STATUS_LABEL = N_("Status")
DEPLOYMENTS_LABEL = N_("Deployments")
ACTIONS_LABEL = N_("Actions")
APPROVE_LABEL = N_("Approve")
DISABLE_LABEL = N_("Disable")
FROM_CONFIG = N_("From the hub's configuration")
NONE_REGISTERED = N_("No LTI 1.3 platform is registered.")
STATUS_NAMES = {
    RegistrationStatus.ACTIVE: N_("Active"),
    RegistrationStatus.PENDING: N_("Waiting for approval"),
    RegistrationStatus.DISABLED: N_("Disabled"),
}
#: What each button of the page does.
ACTIONS = {"approve": RegistrationStatus.ACTIVE, "disable": RegistrationStatus.DISABLED}


class LTI13RegistrationsHandler(BaseHandler):  # type: ignore[misc]
    """Hub admins approve or disable the platforms' registrations here."""

    def gettext(self, message: str) -> str:
        language = preferred_language(self.request.headers.get("Accept-Language", ""))
        return translation(str(TRANSLATIONS_DIR), language).gettext(message)

    def require_admin(self) -> None:
        if not getattr(self.current_user, "admin", False):
            raise web.HTTPError(403, "Only hub admins manage LTI registrations")

    def configured(self) -> set[tuple[str, str]]:
        return {(r.issuer, r.client_id) for r in self.authenticator.configured_registrations()}

    @web.authenticated
    async def get(self) -> None:
        self.require_admin()
        authenticator = self.authenticator
        registrations = await authenticator.off_loop(authenticator.store.list_registrations)
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.page_html(registrations))

    @web.authenticated
    async def post(self) -> None:
        self.require_admin()
        issuer = self.get_body_argument("issuer", "")
        client_id = self.get_body_argument("client_id", "")
        status = ACTIONS.get(self.get_body_argument("action", ""))
        if status is None:
            raise web.HTTPError(400, "Unknown action")
        if (issuer, client_id) in self.configured():
            raise web.HTTPError(400, "This registration is set in the hub's configuration")
        authenticator = self.authenticator
        try:
            await authenticator.off_loop(set_registration_status, authenticator.store, issuer, client_id, status)
        except LtiError as error:
            raise web.HTTPError(404, "No such registration") from error
        self.log.info(
            "LTI 1.3 registration %s client %s set %s by %s", issuer, client_id, status.value, self.current_user.name
        )
        self.redirect(self.request.path)

    def page_html(self, registrations: list[Registration]) -> str:
        _ = self.gettext
        configured = self.configured()
        rows = [self.row_html(r, (r.issuer, r.client_id) in configured) for r in registrations]
        headings = (ISSUER_LABEL, CLIENT_ID_LABEL, STATUS_LABEL, DEPLOYMENTS_LABEL, ACTIONS_LABEL)
        table = (
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(_(h))}</th>" for h in headings)
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
            if rows
            else f"<p>{html.escape(_(NONE_REGISTERED))}</p>"
        )
        language = preferred_language(self.request.headers.get("Accept-Language", ""))
        return (
            f'<!DOCTYPE html><html lang="{html.escape(language)}"><head><meta charset="utf-8">'
            f"<title>{html.escape(_(TITLE))}</title><style>{static_text('css/lti_publish.css')}</style></head>"
            f'<body><main class="lti-registrations"><h1>{html.escape(_(TITLE))}</h1>'
            f"<p>{html.escape(_(INTRO))}</p>{table}</main></body></html>"
        )

    def row_html(self, registration: Registration, from_config: bool) -> str:
        _ = self.gettext
        deployments = ", ".join(d.deployment_id for d in registration.deployments)
        if from_config:
            actions = html.escape(_(FROM_CONFIG))
        else:
            buttons = [
                f'<button type="submit" name="action" value="{action}">{html.escape(_(label))}</button>'
                for action, label, status in (
                    ("approve", APPROVE_LABEL, RegistrationStatus.ACTIVE),
                    ("disable", DISABLE_LABEL, RegistrationStatus.DISABLED),
                )
                if registration.status is not status
            ]
            actions = (
                f'<form method="post">{self.xsrf_form_html()}'
                f'<input type="hidden" name="issuer" value="{html.escape(registration.issuer)}">'
                f'<input type="hidden" name="client_id" value="{html.escape(registration.client_id)}">'
                f"{''.join(buttons)}</form>"
            )
        status = html.escape(_(STATUS_NAMES[registration.status]))
        cells: list[Any] = [
            f"<code>{html.escape(registration.issuer)}</code>",
            f"<code>{html.escape(registration.client_id)}</code>",
            f'<span data-status="{registration.status.value}">{status}</span>',
            html.escape(deployments),
            actions,
        ]
        return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


__all__ = ["LTI13RegistrationHandler", "LTI13RegistrationsHandler"]
