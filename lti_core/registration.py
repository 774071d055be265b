"""LTI 1.3 registrations: which platforms' launches the tool accepts, and how they get registered.

A registration is (issuer, client_id) with its endpoints and deployments; its ``status`` says
whether its launches are accepted now (``RegistrationStatus``): a dynamic registration may wait
for an admin's approval, and an admin may disable one without losing its deployments and links.
"""

from __future__ import annotations

from collections.abc import Sequence

from lti_core.errors import Forbidden
from lti_core.i18n import N_
from lti_core.types import Registration, RegistrationStatus


def validate_active(registration: Registration) -> Registration:
    """``registration`` if its launches are accepted now; else the refusal that says why."""
    if registration.status is RegistrationStatus.PENDING:
        raise Forbidden(
            "registration_pending",
            N_("This platform's registration is waiting for the tool's administrator to approve it."),
        )
    if registration.status is RegistrationStatus.DISABLED:
        raise Forbidden(
            "registration_disabled", N_("The tool's administrator has turned off launches from this platform.")
        )
    return registration


def the_one_registration(candidates: Sequence[Registration]) -> Registration | None:
    """The registration a login without ``client_id`` means: the issuer's only active one, else its
    only one (whose status then says why it cannot launch), else None (ambiguous or unknown)."""
    active = [r for r in candidates if r.status is RegistrationStatus.ACTIVE]
    if len(active) == 1:
        return active[0]
    return candidates[0] if len(candidates) == 1 else None
