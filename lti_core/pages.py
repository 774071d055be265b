"""The pages of the LTI flows, as plain data: which page, its status, its text (message ids) and links.

A host answers a request with a redirect or with one of these, rendered by
``lti_publish_assets.page_html`` in the reader's language and sent with ``HEADERS``: so a refusal, the
browser check and the storage login read the same in every host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lti_core.errors import LtiError
from lti_core.i18n import N_
from lti_core.lti13 import binding
from lti_core.lti13.login import LoginRedirect
from lti_core.prompt import CHOICE_CONFIRM, CHOICE_EXISTING, CHOICE_NEW, PromptState
from lti_core.registration import CLOSE_SUBJECT
from lti_core.types import Registration, RegistrationStatus
from lti_core.urls import add_query

#: Every page carries launch data (an id_token, a state) or says why a launch failed: never cached,
#: never referred on to another site. "same-origin", not "no-referrer": under "no-referrer" browsers
#: send "Origin: null" on the page's own form POSTs (the linking prompt's, the content picker's), which
#: a host's CSRF check (Django's) rightly refuses.
HEADERS = (("Cache-Control", "no-store"), ("Referrer-Policy", "same-origin"))

REASON_LABEL = N_("Reason code")


@dataclass(frozen=True)
class Flow:
    """Which flow a refusal ends: its page's title and what to do next."""

    title: str
    hint: str


LAUNCH = Flow(
    N_("This launch could not be completed"),
    N_("Launch again from your course. If this keeps happening, give the reason code to your administrator."),
)
REGISTRATION = Flow(
    N_("The registration could not be completed"),
    N_(
        "Start the registration again from your platform. If this keeps happening, give the reason code to "
        "the tool's administrator."
    ),
)

#: The refusals of an admin page's forms: the admin's change was not made.
ADMIN = Flow(
    N_("The change was not made"),
    N_("Go back to the page of LTI registrations, reload it and try again."),
)


@dataclass(frozen=True)
class RefusalPage:
    """A refused request: what happened (``message``, a message id), its reason code, what to do.

    ``action_url``, when set, starts the launch again in a new, first-party window.
    """

    status: int
    reason: str
    message: str
    action_url: str = ""
    action_label: str = binding.RELAUNCH_LABEL
    flow: Flow = LAUNCH
    #: Values of ``message``'s ``%(name)s`` placeholders, put in after it is translated.
    arguments: tuple[tuple[str, str], ...] = ()

    def text(self, translate: Callable[[str], str]) -> str:
        """The message in the language ``translate`` gives, its placeholders filled in."""
        translated = translate(self.message)
        return translated % dict(self.arguments) if self.arguments else translated


@dataclass(frozen=True)
class BrowserCheckPage:
    """Re-posts a launch from the tool's own origin (``lti_core.lti13.binding``)."""

    check: binding.BrowserCheck
    status: int = 200


@dataclass(frozen=True)
class StorageLoginPage:
    """Stores the login's state with the platform's frame (``lti.put_data``), then goes to the
    platform; ``fallback_url`` is the same login with a state cookie, for a frame that does not answer."""

    redirect: LoginRedirect
    fallback_url: str
    status: int = 200


REGISTRATION_TITLE = N_("Tool registered")
REGISTRATION_ACTIVE = N_("The tool is registered with your platform, and its launches are accepted now.")
REGISTRATION_PENDING = N_(
    "The tool is registered with your platform. Its launches will be accepted once the tool's "
    "administrator approves the registration."
)
REGISTRATION_DISABLED = N_(
    "The tool's registration with your platform is updated. The tool's administrator has turned off launches from it."
)
CLIENT_ID_LABEL = N_("Client ID")
DEPLOYMENT_ID_LABEL = N_("Deployment ID")
CLOSE_LABEL = N_("Close")


@dataclass(frozen=True)
class RegistrationCompletePage:
    """The end of a dynamic registration: says what was registered and whether it may launch yet, and
    tells the platform's window it is done (``{subject: "org.imsglobal.lti.close"}``, posted to
    ``window.opener || window.parent`` at the platform's issuer origin only)."""

    registration: Registration
    platform_origin: str
    status: int = 200
    close_subject: str = CLOSE_SUBJECT

    @property
    def message(self) -> str:
        """What happened, a message id."""
        return {
            RegistrationStatus.ACTIVE: REGISTRATION_ACTIVE,
            RegistrationStatus.PENDING: REGISTRATION_PENDING,
            RegistrationStatus.DISABLED: REGISTRATION_DISABLED,
        }[self.registration.status]


def registration_complete_page(registration: Registration) -> RegistrationCompletePage:
    """The close page of ``registration``: its messages go to the issuer's origin, nowhere else."""
    return RegistrationCompletePage(registration, binding.origin_of(registration.issuer))


PROMPT_CHOOSE_TITLE = N_("How do you want to continue?")
PROMPT_CHOOSE_MESSAGE = N_(
    "This is your first visit from %(platform)s. You can get a new account here, or link an account you "
    "already have here: from then on, every launch from %(platform)s signs you in to it."
)
PROMPT_EXISTING_ONLY_MESSAGE = N_(
    "This is your first visit from %(platform)s. Sign in to your account here to link it: from then on, "
    "every launch from %(platform)s signs you in to it."
)
PROMPT_NEW_LABEL = N_("Create a new account")
PROMPT_EXISTING_LABEL = N_("Sign in to an existing account and link it")
PROMPT_CONFIRM_TITLE = N_("Link your account")
PROMPT_CONFIRM_MESSAGE = N_(
    "You are signed in as %(account)s. Link this account to your user on %(platform)s? Every later launch "
    "from %(platform)s will sign you in as %(account)s."
)
PROMPT_CONFIRM_LABEL = N_("Link my account")
PROMPT_OTHER_LABEL = N_("Use another account")
PROMPT_NEW_WINDOW_MESSAGE = N_(
    "Your browser does not allow this step inside the course page. Please continue in a new window."
)
PROMPT_NEW_WINDOW_LABEL = N_("Continue in a new window")


@dataclass(frozen=True)
class LinkPromptPage:
    """The linking prompt (``lti_core.prompt``): the choice, or the confirmation of the signed-in
    account. Its forms POST ``choice`` (``prompt.CHOICE_*``) and ``form_token`` to ``step_url``, with
    the host's own CSRF field (``csrf``: name, value) when it has one. ``new_window_url``, when set:
    this browser is not bound here (a platform's frame that drops the tool's cookies), so the page
    only offers to continue in a new window, where the prompt is handed over. ``sign_in_window_url``,
    when set: the page is in a platform's frame where the host's sign-in cannot show (sign-in pages
    refuse to be framed), so signing in to an existing account opens that new window instead, while
    a new account is still made in the frame."""

    state: PromptState
    may_create: bool
    platform: str
    step_url: str
    form_token: str
    account: str = ""
    csrf: tuple[str, str] | None = None
    new_window_url: str = ""
    sign_in_window_url: str = ""
    status: int = 200

    @property
    def title(self) -> str:
        return PROMPT_CONFIRM_TITLE if self.state is PromptState.CONFIRMING else PROMPT_CHOOSE_TITLE

    def message(self, translate: Callable[[str], str]) -> str:
        """What the page says, translated, its names filled in."""
        if self.new_window_url:
            return translate(PROMPT_NEW_WINDOW_MESSAGE)
        if self.state is PromptState.CONFIRMING:
            return translate(PROMPT_CONFIRM_MESSAGE) % {"account": self.account, "platform": self.platform}
        text = PROMPT_CHOOSE_MESSAGE if self.may_create else PROMPT_EXISTING_ONLY_MESSAGE
        return translate(text) % {"platform": self.platform}

    def choices(self) -> tuple[tuple[str, str], ...]:
        """The buttons, in order: (choice, label message id)."""
        if self.new_window_url:
            return ()
        if self.state is PromptState.CONFIRMING:
            shown = [(CHOICE_CONFIRM, PROMPT_CONFIRM_LABEL), (CHOICE_EXISTING, PROMPT_OTHER_LABEL)]
        else:
            shown = [(CHOICE_EXISTING, PROMPT_EXISTING_LABEL)]
        if self.may_create:
            shown.append((CHOICE_NEW, PROMPT_NEW_LABEL))
        return tuple(shown)


# -- the content picker of deep linking (both hosts' "Published content" page) ---------------------
PICK_TITLE = N_("Published content")
PICK_INTRO = N_("Tick the items to add to %(course)s, then click Add content.")
PICK_INTRO_ONE = N_("Pick the item to add to %(course)s, then click Add content.")
PICK_ITEM_LABEL = N_("Item")
#: What an item that is a whole course (its score: the course grade) is marked with.
PICK_WHOLE_COURSE = N_("Whole course")
PICK_MAX_SCORE_LABEL = N_("Maximum score")
PICK_GRADEBOOK_LABEL = N_("Add to gradebook")
PICK_ADD_LABEL = N_("Add content")
PICK_CANCEL_LABEL = N_("Cancel")
PICK_NOTHING_PICKED = N_("Pick at least one item, or click Cancel.")
PICK_SENT_TITLE = N_("Content added")
PICK_SENT_INTRO = N_("These items are sent to your course:")
PICK_IN_GRADEBOOK = N_("in the gradebook, out of %(points)s")
PICK_CANCELLED_TITLE = N_("Nothing was added")
PICK_CANCELLED_INTRO = N_("You cancelled: no content is sent to your course.")
PICK_CONTINUE_LABEL = N_("Continue")
PICK_CANCELLED_MESSAGE = N_("No content was added.")


# -- the session handover (``lti_core.handover``): a frame that keeps none of the tool's cookies --
HANDOVER_FLOW = Flow(
    N_("Continue in a new window"),
    N_(
        "Open the activity in a new window: you are signed in there. If the link has expired, open the "
        "activity again from your course."
    ),
)
HANDOVER_MESSAGE = N_(
    "This browser keeps none of the tool's cookies inside your course's page, so the activity cannot stay "
    "signed in here."
)
#: The reason code the handover page shows, for support ("what did the page say?").
HANDOVER_REASON = "cookies_blocked_in_frame"


def handover_page(window_url: str) -> RefusalPage:
    """The continue step's page in a frame that kept no session: the refusal pages' layout (title,
    message, reason code) with one way on, "Open in a new window" to ``window_url``, which signs in
    there once. 200: the launch itself succeeded."""
    return RefusalPage(200, HANDOVER_REASON, HANDOVER_MESSAGE, window_url, flow=HANDOVER_FLOW)


Page = RefusalPage | BrowserCheckPage | StorageLoginPage | RegistrationCompletePage | LinkPromptPage


def refusal_page(error: LtiError, login_url: str, flow: Flow = LAUNCH) -> RefusalPage:
    """The page for ``error`` in ``flow``; ``login_url`` is the tool's LTI 1.3 login initiation endpoint."""
    relaunch = ""
    if isinstance(error, binding.NotBoundToBrowser):
        relaunch = add_query(login_url, error.relaunch_params)
    arguments = tuple(sorted(error.arguments.items()))
    return RefusalPage(error.status, error.reason, error.message, relaunch, flow=flow, arguments=arguments)


def storage_login_page(redirect: LoginRedirect, login_url: str) -> StorageLoginPage:
    return StorageLoginPage(redirect, add_query(login_url, binding.relaunch_params(redirect.state)))
