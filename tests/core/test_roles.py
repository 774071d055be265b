"""LIS roles: the three spellings platforms use, normalised to v2 URIs, and the local rights they give."""

from __future__ import annotations

import pytest

from lti_core.roles import local_role, normalise_role, normalise_roles, parse_lti11_roles
from lti_core.types import Role

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        # Full LIS v2 URIs (LTI 1.3, Moodle) pass through.
        (MEMBERSHIP + "Learner", MEMBERSHIP + "Learner"),
        (MEMBERSHIP + "Instructor", MEMBERSHIP + "Instructor"),
        (TA, TA),
        (INSTITUTION + "Administrator", INSTITUTION + "Administrator"),
        (SYSTEM + "Administrator", SYSTEM + "Administrator"),
        # LTI 1.1 URNs.
        ("urn:lti:role:ims/lis/Learner", MEMBERSHIP + "Learner"),
        ("urn:lti:role:ims/lis/Instructor", MEMBERSHIP + "Instructor"),
        ("urn:lti:role:ims/lis/TeachingAssistant", TA),
        ("urn:lti:role:ims/lis/Instructor/TeachingAssistant", TA),
        (
            "urn:lti:role:ims/lis/Instructor/Grader",
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#Grader",
        ),
        ("urn:lti:role:ims/lis/ContentDeveloper", MEMBERSHIP + "ContentDeveloper"),
        ("urn:lti:instrole:ims/lis/Administrator", INSTITUTION + "Administrator"),
        ("urn:lti:instrole:ims/lis/Instructor", INSTITUTION + "Instructor"),
        ("urn:lti:sysrole:ims/lis/Administrator", SYSTEM + "Administrator"),
        ("urn:lti:sysrole:ims/lis/SysAdmin", SYSTEM + "SysAdmin"),
        # Short names (LTI 1.1 launches, Moodle's NRPS memberships).
        ("Learner", MEMBERSHIP + "Learner"),
        ("Instructor", MEMBERSHIP + "Instructor"),
        ("Mentor", MEMBERSHIP + "Mentor"),
        ("ContentDeveloper", MEMBERSHIP + "ContentDeveloper"),
        ("Administrator", MEMBERSHIP + "Administrator"),
        ("TeachingAssistant", TA),
        (" Instructor ", MEMBERSHIP + "Instructor"),
        # Unknown values pass through unchanged (and give no rights).
        ("http://example.com/roles#Wizard", "http://example.com/roles#Wizard"),
        ("learner", "learner"),
    ],
)
def test_normalise_role(role, expected):
    assert normalise_role(role) == expected


def test_normalise_roles_keeps_order_and_drops_duplicates_and_blanks():
    assert normalise_roles(
        ["Instructor", "", "  ", MEMBERSHIP + "Instructor", "urn:lti:role:ims/lis/Learner", "Learner"]
    ) == (
        MEMBERSHIP + "Instructor",
        MEMBERSHIP + "Learner",
    )


def test_parse_lti11_roles():
    assert parse_lti11_roles(
        "Instructor,urn:lti:sysrole:ims/lis/Administrator,urn:lti:instrole:ims/lis/Administrator"
    ) == (
        MEMBERSHIP + "Instructor",
        SYSTEM + "Administrator",
        INSTITUTION + "Administrator",
    )
    assert parse_lti11_roles("Learner, urn:lti:role:ims/lis/TeachingAssistant") == (MEMBERSHIP + "Learner", TA)
    assert parse_lti11_roles("") == ()
    assert parse_lti11_roles(",,") == ()


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([MEMBERSHIP + "Instructor"], Role.STAFF),
        (["Instructor"], Role.STAFF),
        (["urn:lti:role:ims/lis/Instructor"], Role.STAFF),
        ([TA], Role.STAFF),
        (["TeachingAssistant"], Role.STAFF),
        (["urn:lti:role:ims/lis/TeachingAssistant"], Role.STAFF),
        ([MEMBERSHIP + "ContentDeveloper"], Role.STAFF),
        ([MEMBERSHIP + "Administrator"], Role.STAFF),
        # Moodle's site administrator teaching a course.
        ([INSTITUTION + "Administrator", MEMBERSHIP + "Instructor", SYSTEM + "Administrator"], Role.STAFF),
        # An administrator without a context role is staff...
        ([INSTITUTION + "Administrator"], Role.STAFF),
        ([SYSTEM + "Administrator"], Role.STAFF),
        (["urn:lti:sysrole:ims/lis/SysAdmin"], Role.STAFF),
        # ...but a learner here stays a learner, whatever the institution says.
        ([INSTITUTION + "Administrator", MEMBERSHIP + "Learner"], Role.LEARNER),
        (["Learner", "urn:lti:instrole:ims/lis/Administrator", "urn:lti:sysrole:ims/lis/Administrator"], Role.LEARNER),
        # A teacher who is also enrolled as a learner is a teacher of this context.
        ([MEMBERSHIP + "Learner", MEMBERSHIP + "Instructor"], Role.STAFF),
        ([MEMBERSHIP + "Learner"], Role.LEARNER),
        (["Learner"], Role.LEARNER),
        # Observers and organisers are not graders.
        ([MEMBERSHIP + "Mentor"], Role.LEARNER),
        (["Mentor"], Role.LEARNER),
        (["urn:lti:role:ims/lis/Mentor"], Role.LEARNER),
        ([MEMBERSHIP + "Member"], Role.LEARNER),
        ([MEMBERSHIP + "Manager"], Role.LEARNER),
        ([MEMBERSHIP + "Officer"], Role.LEARNER),
        # Institution-level roles other than administrator give no rights here.
        ([INSTITUTION + "Instructor"], Role.LEARNER),
        ([INSTITUTION + "Faculty"], Role.LEARNER),
        # Sub-roles alone, unknown values and nothing at all.
        (["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#Grader"], Role.LEARNER),
        (["instructor"], Role.LEARNER),
        (["http://example.com/roles#Instructor"], Role.LEARNER),
        ([], Role.LEARNER),
    ],
)
def test_local_role(roles, expected):
    assert local_role(roles) is expected


def test_local_role_accepts_any_iterable():
    assert local_role(r for r in ["Instructor"]) is Role.STAFF
    assert local_role(("Learner",)) is Role.LEARNER


# -- exact vocabulary: names are matched whole, never by prefix -------------------------------

V2 = "http://purl.imsglobal.org/vocab/lis/v2/membership/"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        # LTI 1.1 context sub-roles map to their v2 form.
        ("urn:lti:role:ims/lis/Learner/NonCreditLearner", V2 + "Learner#NonCreditLearner"),
        ("urn:lti:role:ims/lis/Instructor/PrimaryInstructor", V2 + "Instructor#PrimaryInstructor"),
        ("urn:lti:role:ims/lis/Administrator/SystemAdministrator", V2 + "Administrator#SystemAdministrator"),
        ("urn:lti:role:ims/lis/Mentor/Tutor", V2 + "Mentor#Tutor"),
        ("urn:lti:role:ims/lis/Officer/Vice-Chair", V2 + "Officer#Vice-Chair"),
        ("urn:lti:role:ims/lis/Manager", MEMBERSHIP + "Manager"),
        # LTI 1.1's TeachingAssistant principal role and its sub-roles are the v2 teaching assistant.
        ("urn:lti:role:ims/lis/TeachingAssistant/TeachingAssistantSection", TA),
        ("urn:lti:role:ims/lis/TeachingAssistant/Grader", TA),
        # Institution and system roles of the vocabulary.
        ("urn:lti:instrole:ims/lis/Student", INSTITUTION + "Student"),
        ("urn:lti:instrole:ims/lis/ProspectiveStudent", INSTITUTION + "ProspectiveStudent"),
        ("urn:lti:sysrole:ims/lis/AccountAdmin", SYSTEM + "AccountAdmin"),
        # Anything else passes through unchanged.
        ("urn:lti:role:ims/lis/TeachingAssistantNotReally", "urn:lti:role:ims/lis/TeachingAssistantNotReally"),
        ("urn:lti:role:ims/lis/TeachingAssistant/Bogus", "urn:lti:role:ims/lis/TeachingAssistant/Bogus"),
        ("urn:lti:role:ims/lis/Instructor/TeachingAssistantX", "urn:lti:role:ims/lis/Instructor/TeachingAssistantX"),
        ("urn:lti:role:ims/lis/InstructorX", "urn:lti:role:ims/lis/InstructorX"),
        ("urn:lti:role:ims/lis/Instructor/", "urn:lti:role:ims/lis/Instructor/"),
        ("urn:lti:role:ims/lis/Instructor/Grader/Extra", "urn:lti:role:ims/lis/Instructor/Grader/Extra"),
        ("urn:lti:role:ims/lis/Learner/Administrator", "urn:lti:role:ims/lis/Learner/Administrator"),
        ("urn:lti:role:ims/lis/", "urn:lti:role:ims/lis/"),
        ("urn:lti:role:ims/lis/instructor", "urn:lti:role:ims/lis/instructor"),
        ("urn:lti:sysrole:ims/lis/SysAdminX", "urn:lti:sysrole:ims/lis/SysAdminX"),
        ("urn:lti:sysrole:ims/lis/Administrator/Support", "urn:lti:sysrole:ims/lis/Administrator/Support"),
        ("urn:lti:instrole:ims/lis/AdministratorOfNothing", "urn:lti:instrole:ims/lis/AdministratorOfNothing"),
        ("urn:lti:instrole:ims/lis/Instructor/Grader", "urn:lti:instrole:ims/lis/Instructor/Grader"),
        ("TeachingAssistantNotReally", "TeachingAssistantNotReally"),
        ("Instructor/Grader", "Instructor/Grader"),
        ("InstructorX", "InstructorX"),
    ],
)
def test_exact_vocabulary(role, expected):
    assert normalise_role(role) == expected


@pytest.mark.parametrize(
    "role",
    [
        "urn:lti:role:ims/lis/TeachingAssistantNotReally",
        "urn:lti:role:ims/lis/TeachingAssistant/Bogus",
        "urn:lti:role:ims/lis/Instructor/TeachingAssistantX",
        "urn:lti:role:ims/lis/InstructorX",
        "urn:lti:role:ims/lis/AdministratorX",
        "urn:lti:role:ims/lis/ContentDeveloperX",
        "urn:lti:sysrole:ims/lis/SysAdminX",
        "urn:lti:sysrole:ims/lis/Administrator/Support",
        "urn:lti:instrole:ims/lis/AdministratorOfNothing",
        "TeachingAssistantNotReally",
        "InstructorX",
        MEMBERSHIP + "InstructorX",
        TA + "X",
        SYSTEM + "SysAdminX",
        # Known sub-roles alone are not staff either (as before).
        "urn:lti:role:ims/lis/Instructor/Grader",
        "urn:lti:role:ims/lis/Administrator/Support",
        "urn:lti:role:ims/lis/Learner/Instructor",
    ],
)
def test_unknown_or_sub_roles_never_give_staff(role):
    assert local_role([role]) is Role.LEARNER


def test_a_learner_context_role_wins_over_an_administrator_whatever_its_spelling():
    admins = [
        "urn:lti:sysrole:ims/lis/SysAdmin",
        INSTITUTION + "Administrator",
        "urn:lti:instrole:ims/lis/Administrator",
    ]
    for learner in ("Learner", "urn:lti:role:ims/lis/Learner", MEMBERSHIP + "Learner"):
        assert local_role([*admins, learner]) is Role.LEARNER


# -- the table admins extend ------------------------------------------------------------------------


def test_an_admin_may_give_staff_rights_to_more_context_roles_only():
    from lti_core.roles import DEFAULT_ROLES, RoleTable

    mentor = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
    assert DEFAULT_ROLES.local_role([mentor]) is Role.LEARNER
    table = DEFAULT_ROLES.extended(["Mentor", "urn:lti:role:ims/lis/Instructor/GuestInstructor"])
    assert table.local_role([mentor]) is Role.STAFF
    assert (
        table.local_role(["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#GuestInstructor"]) is Role.STAFF
    )
    for wrong in (
        ["Learner"],
        ["urn:lti:instrole:ims/lis/Faculty"],
        ["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"],
        ["custom_role"],
    ):
        with pytest.raises(ValueError):
            RoleTable().extended(wrong)


@pytest.mark.parametrize(
    "roles",
    [
        # A learner with every other kind of role that might look like rights.
        ["Learner", "urn:lti:instrole:ims/lis/Administrator"],
        ["Learner", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"],
        ["Learner", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"],
        ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"],  # institution role alone
        ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Staff"],
        ["Learner", "InstructorOfAnotherCourse", "urn:lti:role:ims/lis/Instructorx"],
        ["Learner", "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"],
    ],
)
def test_nothing_in_a_launch_raises_a_learner_to_staff(roles):
    from lti_core.roles import DEFAULT_ROLES

    assert DEFAULT_ROLES.local_role(roles) is Role.LEARNER
