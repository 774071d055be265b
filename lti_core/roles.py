"""LIS role vocabulary: normalise what platforms send, and map it to local rights.

Platforms send roles three ways: full LIS v2 URIs (LTI 1.3, Moodle launches), LTI 1.1 URNs
(``urn:lti:role:ims/lis/Instructor``) and bare short names (``Instructor``; Moodle's NRPS and
LTI 1.1 launches). Everything is normalised to the full v2 URI first, so the rights decision is
made in one place.
"""

from __future__ import annotations

from collections.abc import Iterable

from lti_core.types import Role

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"

LEARNER = MEMBERSHIP + "Learner"
INSTRUCTOR = MEMBERSHIP + "Instructor"

_CONTEXT_SHORT = {
    "Administrator",
    "ContentDeveloper",
    "Instructor",
    "Learner",
    "Mentor",
    "Manager",
    "Member",
    "Officer",
}
_LTI11_URN = {
    "urn:lti:role:ims/lis/": MEMBERSHIP,
    "urn:lti:instrole:ims/lis/": INSTITUTION,
    "urn:lti:sysrole:ims/lis/": SYSTEM,
}
# Context roles that give staff rights on the published content. Mentor, Member, Officer and
# Manager do not: they are observers or organisers, never graders.
_STAFF_CONTEXT_ROLES = {MEMBERSHIP + "Administrator", MEMBERSHIP + "ContentDeveloper", INSTRUCTOR, TEACHING_ASSISTANT}
_ADMIN_ROLES = {INSTITUTION + "Administrator", SYSTEM + "Administrator", SYSTEM + "SysAdmin"}


def normalise_role(role: str) -> str:
    """The full LIS v2 URI for ``role``; unknown URIs pass through unchanged."""
    role = role.strip()
    if role in _CONTEXT_SHORT:
        return MEMBERSHIP + role
    if role == "TeachingAssistant":
        return TEACHING_ASSISTANT
    for urn, base in _LTI11_URN.items():
        if role.startswith(urn):
            rest = role[len(urn) :]
            if rest.startswith(("TeachingAssistant", "Instructor/TeachingAssistant")):
                return TEACHING_ASSISTANT
            # LTI 1.1 sub-roles look like ``Instructor/Grader``; the v2 form is ``membership/Instructor#Grader``.
            if "/" in rest and base == MEMBERSHIP:
                principal, sub = rest.split("/", 1)
                return f"http://purl.imsglobal.org/vocab/lis/v2/membership/{principal}#{sub}"
            return base + rest
    return role


def normalise_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Normalise and de-duplicate, keeping the platform's order."""
    seen: dict[str, None] = {}
    for role in roles:
        if role and role.strip():
            seen.setdefault(normalise_role(role), None)
    return tuple(seen)


def parse_lti11_roles(value: str) -> tuple[str, ...]:
    """LTI 1.1 sends roles as one comma-separated parameter."""
    return normalise_roles(value.split(","))


def local_role(roles: Iterable[str]) -> Role:
    """Staff only for a staff context role, or for a platform administrator who is not a learner here.

    A learner can never gain staff rights: a Learner context role always wins over an
    institution-wide administrator role, since it is this context that the launch is about.
    """
    normalised = set(normalise_roles(roles))
    if normalised & _STAFF_CONTEXT_ROLES:
        return Role.STAFF
    if LEARNER not in normalised and normalised & _ADMIN_ROLES:
        return Role.STAFF
    return Role.LEARNER
