"""LIS role vocabulary: normalise what platforms send, and map it to local rights.

Platforms send roles three ways: full LIS v2 URIs (LTI 1.3, Moodle launches), LTI 1.1 URNs
(``urn:lti:role:ims/lis/Instructor``) and bare short names (``Instructor``; Moodle's NRPS and
LTI 1.1 launches). Everything is normalised to the full v2 URI first, so the rights decision is
made in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from lti_core.types import Launch, Role

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"

LEARNER = MEMBERSHIP + "Learner"
INSTRUCTOR = MEMBERSHIP + "Instructor"

# The LIS context roles and their sub-roles (LTI 1.3 §A.2.3 and §A.2.3.1; LTI 1.1 appendix A).
_CONTEXT_SUB_ROLES: dict[str, frozenset[str]] = {
    "Administrator": frozenset(
        {
            "Administrator",
            "Developer",
            "ExternalDeveloper",
            "ExternalSupport",
            "ExternalSystemAdministrator",
            "Support",
            "SystemAdministrator",
        }
    ),
    "ContentDeveloper": frozenset({"ContentDeveloper", "ContentExpert", "ExternalContentExpert", "Librarian"}),
    "Instructor": frozenset(
        {
            "ExternalInstructor",
            "Grader",
            "GuestInstructor",
            "Lecturer",
            "PrimaryInstructor",
            "SecondaryInstructor",
            "TeachingAssistant",
            "TeachingAssistantGroup",
            "TeachingAssistantOffering",
            "TeachingAssistantSection",
            "TeachingAssistantSectionAssociation",
            "TeachingAssistantTemplate",
        }
    ),
    "Learner": frozenset({"ExternalLearner", "GuestLearner", "Instructor", "Learner", "NonCreditLearner"}),
    "Manager": frozenset({"AreaManager", "CourseCoordinator", "ExternalObserver", "Manager", "Observer"}),
    "Member": frozenset({"Member"}),
    "Mentor": frozenset(
        {
            "Advisor",
            "Auditor",
            "ExternalAdvisor",
            "ExternalAuditor",
            "ExternalLearningFacilitator",
            "ExternalMentor",
            "ExternalReviewer",
            "ExternalTutor",
            "LearningFacilitator",
            "Mentor",
            "Reviewer",
            "Tutor",
        }
    ),
    "Officer": frozenset({"Chair", "Communications", "Secretary", "Treasurer", "Vice-Chair"}),
}
_CONTEXT_SHORT = frozenset(_CONTEXT_SUB_ROLES)
# LTI 1.1 has TeachingAssistant as a context role of its own, with these sub-roles; LIS v2 made it a
# sub-role of Instructor. All of them mean the v2 teaching assistant (staff), as they always have here.
_LTI11_TEACHING_ASSISTANT = frozenset(
    {
        "TeachingAssistant",
        "Instructor/TeachingAssistant",
        *(
            "TeachingAssistant/" + sub
            for sub in (
                "TeachingAssistant",
                "TeachingAssistantSection",
                "TeachingAssistantSectionAssociation",
                "TeachingAssistantOffering",
                "TeachingAssistantTemplate",
                "TeachingAssistantGroup",
                "Grader",
            )
        ),
    }
)
# LIS institution and system roles (LTI 1.3 §A.2.1, §A.2.2; LTI 1.1 appendix A).
_INSTITUTION_ROLES = frozenset(
    {
        "Administrator",
        "Alumni",
        "Faculty",
        "Guest",
        "Instructor",
        "Learner",
        "Member",
        "Mentor",
        "None",
        "Observer",
        "Other",
        "ProspectiveStudent",
        "Staff",
        "Student",
    }
)
_SYSTEM_ROLES = frozenset({"AccountAdmin", "Administrator", "Creator", "None", "SysAdmin", "SysSupport", "User"})
_LTI11_CONTEXT = "urn:lti:role:ims/lis/"
_LTI11_INSTITUTION = "urn:lti:instrole:ims/lis/"
_LTI11_SYSTEM = "urn:lti:sysrole:ims/lis/"
# Context roles that give staff rights on the published content. Mentor, Member, Officer and
# Manager do not: they are observers or organisers, never graders.
_STAFF_CONTEXT_ROLES = {MEMBERSHIP + "Administrator", MEMBERSHIP + "ContentDeveloper", INSTRUCTOR, TEACHING_ASSISTANT}
_ADMIN_ROLES = {INSTITUTION + "Administrator", SYSTEM + "Administrator", SYSTEM + "SysAdmin"}


def _lti11_context_role(name: str) -> str | None:
    """The v2 URI of an LTI 1.1 context role name (``Instructor``, ``Instructor/Grader``), if it is one."""
    if name in _LTI11_TEACHING_ASSISTANT:
        return TEACHING_ASSISTANT
    if name in _CONTEXT_SHORT:
        return MEMBERSHIP + name
    principal, _, sub = name.partition("/")
    if sub in _CONTEXT_SUB_ROLES.get(principal, ()):
        # LTI 1.1 writes sub-roles ``Instructor/Grader``; the v2 form is ``membership/Instructor#Grader``.
        return f"http://purl.imsglobal.org/vocab/lis/v2/membership/{principal}#{sub}"
    return None


def _lti11_urn(role: str) -> str | None:
    """The v2 URI of an LTI 1.1 role URN from the vocabulary, or None."""
    if role.startswith(_LTI11_CONTEXT):
        return _lti11_context_role(role[len(_LTI11_CONTEXT) :])
    if role.startswith(_LTI11_INSTITUTION) and role[len(_LTI11_INSTITUTION) :] in _INSTITUTION_ROLES:
        return INSTITUTION + role[len(_LTI11_INSTITUTION) :]
    if role.startswith(_LTI11_SYSTEM) and role[len(_LTI11_SYSTEM) :] in _SYSTEM_ROLES:
        return SYSTEM + role[len(_LTI11_SYSTEM) :]
    return None


def normalise_role(role: str) -> str:
    """The full LIS v2 URI for ``role``; anything outside the vocabulary passes through unchanged.

    Names are matched exactly, never by prefix: ``TeachingAssistantNotReally`` is not a role, and
    an unknown value is kept as it is so that it can never match a role that gives rights.
    """
    role = role.strip()
    # Short names are principal context roles only (LTI 1.3 deprecates them but allows them).
    if role in _CONTEXT_SHORT:
        return MEMBERSHIP + role
    if role == "TeachingAssistant":
        return TEACHING_ASSISTANT
    return _lti11_urn(role) or role


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


def _is_context_role(role: str) -> bool:
    return role.startswith(MEMBERSHIP) or role.startswith("http://purl.imsglobal.org/vocab/lis/v2/membership/")


@dataclass(frozen=True)
class RoleTable:
    """Which roles give staff rights on the published content (the XBlock host) or the instructor
    group (the hub); every other role gives learner rights.

    ``staff_context_roles``: context roles of this launch's context (instructors, teaching
    assistants, content developers, context administrators). ``admin_roles``: institution or system
    administrators, who get staff rights only when they are not a learner in this context. Admins
    extend the first with ``extended`` (e.g. Moodle's non-editing teacher, sent as ``Mentor``).
    """

    staff_context_roles: frozenset[str] = frozenset(_STAFF_CONTEXT_ROLES)
    admin_roles: frozenset[str] = frozenset(_ADMIN_ROLES)

    def extended(self, staff_roles: Iterable[str]) -> RoleTable:
        """This table with more context roles that give staff rights (names, URNs or URIs).

        Only context roles: an institution or system role says nothing of this course, and the
        Learner role never gives staff rights (``ValueError`` for either).
        """
        added = normalise_roles(staff_roles)
        wrong = [role for role in added if not _is_context_role(role) or role == LEARNER]
        if wrong:
            raise ValueError(f"only context roles other than Learner can give staff rights: {', '.join(wrong)}")
        return replace(self, staff_context_roles=self.staff_context_roles | frozenset(added))

    def local_role(self, roles: Iterable[str]) -> Role:
        """Staff only for a staff context role, or for a platform administrator who is not a learner here.

        A learner can never gain staff rights: a Learner context role always wins over an
        institution-wide administrator role, since it is this context that the launch is about.
        """
        normalised = set(normalise_roles(roles))
        if normalised & self.staff_context_roles:
            return Role.STAFF
        if LEARNER not in normalised and normalised & self.admin_roles:
            return Role.STAFF
        return Role.LEARNER

    def apply(self, launch: Launch) -> Launch:
        """``launch`` with the local role this table gives its (normalised) roles."""
        role = self.local_role(launch.roles)
        return launch if role is launch.role else replace(launch, role=role)


DEFAULT_ROLES = RoleTable()


def local_role(roles: Iterable[str]) -> Role:
    """The local role ``DEFAULT_ROLES`` gives (what every launch is first given; see ``RoleTable``)."""
    return DEFAULT_ROLES.local_role(roles)
