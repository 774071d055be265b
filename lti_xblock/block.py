"""The ``lti_publish`` XBlock: a container whose children are what a platform's learners see.

A course author adds it in Studio, puts content inside it, and copies the launch details its
studio view shows into the platform (Moodle, Canvas...). Launches land on the children, rendered
by this block's ``student_view``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from django.template import Context, Engine
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from web_fragments.fragment import Fragment
from xblock.completable import XBlockCompletionMode
from xblock.core import XBlock
from xblock.exceptions import JsonHandlerError
from xblock.fields import Boolean, Float, Scope, String

from lti_core.i18n import N_
from lti_core.linking import ProvisioningMode, ProvisioningModes
from lti_publish_assets import static_text
from lti_xblock.i18n import gettext as _
from lti_xblock.i18n import js_catalog
from lti_xblock.launch_details import launch_details, tool_base_url

DEFAULT_TITLE = N_("Published content")
ISSUE_CONSUMER_COMMAND = "lti-publish issue-consumer --name <platform>"
RELATIVE_URLS_HINT = N_(
    "These URLs are relative: set TOOL_BASE_URLS in the LTI_PUBLISH setting to this tool's address."
)
NOT_AN_AUTHOR = N_("Only the course team can change the settings of this content.")

# Looked up next to this module, not through INSTALLED_APPS: Studio renders the block too, and
# lti_xblock is installed there as an XBlock only, not as a Django app.
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


@cache
def template_engine() -> Engine:
    return Engine(dirs=[str(TEMPLATE_DIR)], app_dirs=False, autoescape=True)


def render_template(name: str, context: dict[str, Any]) -> SafeString:
    """Render ``lti_xblock/<name>`` (autoescaped) with Django's template engine."""
    html = template_engine().get_template(f"lti_xblock/{name}").render(Context(context))
    return mark_safe(html)  # noqa: S308 - the template engine escaped every variable


def _parse_max_score(value: Any) -> float | None:
    """``value`` as a positive, finite score, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    score = float(value)
    return score if math.isfinite(score) and score > 0 else None


def site_provisioning_modes() -> ProvisioningModes:
    """The site's default provisioning modes: ``LTI_PUBLISH["PROVISIONING"]`` (``{"instructor": ..,
    "learner": ..}``, values of ``ProvisioningMode``), else Moodle's defaults."""
    from django.conf import settings  # not at module level: the runtime may load the block before Django

    configured = getattr(settings, "LTI_PUBLISH", {}).get("PROVISIONING") or {}
    moodle = ProvisioningModes()
    return ProvisioningModes(
        instructor=ProvisioningMode(configured.get("instructor", moodle.instructor.value)),
        learner=ProvisioningMode(configured.get("learner", moodle.learner.value)),
    )


#: The provisioning fields: (field name, the ``ProvisioningModes`` attribute it sets).
PROVISIONING_FIELDS = (("instructor_provisioning", "instructor"), ("learner_provisioning", "learner"))
PROVISIONING_VALUES = [{"value": mode.value, "display_name": mode.label} for mode in ProvisioningMode]

JsonHandler = Callable[["LtiPublishBlock", Any, str], dict[str, Any]]


def studio_handler(func: JsonHandler) -> Any:
    """``XBlock.json_handler`` for the author's editor: anyone but the course team gets a 403 JSON error
    (``{"error": <message>}``) before the handler sees the data, so nothing can be saved."""

    @wraps(func)
    def guarded(self: LtiPublishBlock, data: Any, suffix: str = "") -> dict[str, Any]:
        if not self.user_may_author():
            raise JsonHandlerError(403, _(NOT_AN_AUTHOR))
        return func(self, data, suffix)

    return XBlock.json_handler(guarded)


@XBlock.wants("user")
@XBlock.wants("studio_user_permissions")
class LtiPublishBlock(XBlock):  # type: ignore[misc]  # XBlock ships no type information: Any
    """Content published to LTI platforms: its children, framed by a title."""

    display_name = String(
        display_name=N_("Title"),
        help=N_("The title learners see above the content."),
        scope=Scope.settings,
        default=DEFAULT_TITLE,
    )
    grade_sync = Boolean(
        display_name=N_("Grade sync"),
        help=N_("Send scores back to the platform's gradebook"),
        scope=Scope.settings,
        default=False,
    )
    require_completion = Boolean(
        display_name=N_("Require completion before grade sync"),
        help=N_("Send no score until the learner has answered every graded part of this content."),
        scope=Scope.settings,
        default=False,
    )
    max_score = Float(
        display_name=N_("Maximum score"),
        help=N_("The score sent to the platform for full marks; must be greater than 0."),
        scope=Scope.settings,
        default=100.0,
    )

    # "" (the default): the site's default (``site_provisioning_modes``), Moodle's unless an admin set another.
    instructor_provisioning = String(
        display_name=N_("Provisioning mode for instructors"),
        help=N_("How an instructor's first launch from a platform gets an account here."),
        scope=Scope.settings,
        default="",
        values=PROVISIONING_VALUES,
    )
    learner_provisioning = String(
        display_name=N_("Provisioning mode for learners"),
        help=N_("How a learner's first launch from a platform gets an account here."),
        scope=Scope.settings,
        default="",
        values=PROVISIONING_VALUES,
    )

    has_children = True
    # Studio: show author_view on the unit page; completion is that of the children.
    has_author_view = True
    completion_mode = XBlockCompletionMode.AGGREGATOR

    # ------------------------------------------------------------------ helpers

    @classmethod
    def css_text(cls) -> str:
        """The block's stylesheet, from the installed ``lti_publish_assets`` package."""
        return str(static_text("css/lti_publish.css"))  # lti_publish_assets is untyped for mypy

    # Not ``title``: edx-platform's block-structure transformers collect a field of that name from
    # every block and pickle it into the course cache; a bound method there breaks every publish.
    def shown_title(self) -> str:
        """The title in the current language when it is still the default one."""
        title = str(self.display_name or "")
        return _(title) if title == DEFAULT_TITLE else title

    def content_id(self) -> str:
        return str(self.scope_ids.usage_id)

    def user_may_author(self) -> bool:
        """Whether the current user may change this block's settings: its course team only.

        The host decides (lti_xblock.compat): Studio's write access in Open edX, a staff launch into
        this content in the workbench.
        """
        # Not at module level: compat imports Django's auth models, which need the app registry ready,
        # and a platform may load XBlock classes before that.
        from lti_xblock import compat

        return compat.host().user_may_author(
            self.content_id(),
            self.runtime.service(self, "user"),
            self.runtime.service(self, "studio_user_permissions"),
            getattr(self.scope_ids.usage_id, "context_key", None),
        )

    def provisioning_modes(self) -> ProvisioningModes:
        """The modes its launches link accounts with: this block's, else the site's default."""
        site = site_provisioning_modes()
        chosen = {attribute: str(getattr(self, field) or "") for field, attribute in PROVISIONING_FIELDS}
        return ProvisioningModes(
            instructor=ProvisioningMode(chosen["instructor"]) if chosen["instructor"] else site.instructor,
            learner=ProvisioningMode(chosen["learner"]) if chosen["learner"] else site.learner,
        )

    def tool_base(self) -> str:
        """The tool's public base URL: configured, else the runtime's host (the workbench has one)."""
        base = tool_base_url("")
        if not base:
            hostname = getattr(self.runtime, "hostname", "") or ""
            base = f"http://{hostname}" if hostname else ""
        return base

    def _children_fragments(self, context: dict[str, Any] | None, view_for: Any) -> list[Fragment]:
        fragments = []
        for child_id in self.children:
            child = self.runtime.get_block(child_id)
            fragments.append(self.runtime.render_child(child, view_for(child), context))
        return fragments

    def _render(self, template: str, context: dict[str, Any], children: list[Fragment]) -> Fragment:
        fragment = Fragment()
        for child in children:
            fragment.add_fragment_resources(child)
        # Children render their own, already escaped, HTML.
        context["children"] = [mark_safe(child.body_html()) for child in children]  # noqa: S308
        fragment.add_content(render_template(template, context))
        fragment.add_css(self.css_text())
        return fragment

    def launch_details_context(self) -> dict[str, Any]:
        base = self.tool_base()
        details = launch_details(base, self.content_id())
        command = format_html("<code>{}</code>", ISSUE_CONSUMER_COMMAND)
        # Translators: {command} is a shell command, shown as code; keep it as is.
        issue_consumer = _(N_("Issue a consumer key and secret for each platform with {command}"))
        return {
            "launch_heading": _(N_("Launch details")),
            "launch_intro": _(N_("Paste these into the platform that will show this content.")),
            "relative_hint": "" if base else _(RELATIVE_URLS_HINT),
            "lti11_heading": _(N_("LTI 1.1")),
            "lti11": [(_(N_("Tool URL")), details.lti11_tool_url)],
            "lti11_consumer": format_html(escape(issue_consumer), command=command),
            "lti13_heading": _(N_("LTI 1.3")),
            "lti13": [
                (_(N_("Target link URI")), details.lti13_target_link_uri),
                (_(N_("Login initiation URL")), details.lti13_login_url),
                (_(N_("Redirection URI")), details.lti13_redirect_uri),
                (_(N_("Public keyset URL")), details.lti13_jwks_url),
                (_(N_("Dynamic registration URL")), details.lti13_registration_url),
            ],
            "content_id_label": _(N_("Content ID")),
            "content_id": self.content_id(),
        }

    # -------------------------------------------------------------------- views

    def student_view(self, context: dict[str, Any] | None = None) -> Fragment:
        """The children, one after the other, under the title. The course team (an instructor who
        launched it) gets the instructor view: the launch details with copy buttons and the learners'
        grade sync status too."""
        children = self._children_fragments(context, lambda child: "student_view")
        if not self.user_may_author():
            return self._render("student.html", {"title": self.shown_title()}, children)
        instructor = {"grade_sync_panel": self.grade_sync_panel(), **self.launch_details_context()}
        fragment = self._render("student.html", {"title": self.shown_title(), **instructor}, children)
        self.add_script(fragment, "LtiPublishInstructor")
        return fragment

    @staticmethod
    def add_script(fragment: Fragment, initializer: str) -> None:
        """The block's JavaScript with its own catalog (its strings in the page's language), started
        by ``initializer``."""
        script = static_text("js/studio.js")
        fragment.add_javascript(js_catalog(script))
        fragment.add_javascript(script)
        fragment.initialize_js(initializer)

    def grade_sync_panel(self) -> SafeString:
        """The learners launched into this content, their scores and where their delivery stands."""
        from lti_xblock import scores  # not at module level: it loads Django models (see user_may_author)

        if not self.grade_sync:
            note = _(N_("Grade sync is off: scores stay in this tool."))
        elif self.require_completion:
            note = _(N_("A learner's score is sent once they have answered every graded part."))
        else:
            note = _(N_("Scores are sent to the platform's gradebook as learners earn them."))
        maximum = float(self.max_score)
        rows = [
            {
                "learner": status.learner,
                "link": status.link,
                "score": "" if status.score is None else f"{status.score:g} / {maximum:g}",
                "state": status.state,
                "state_label": _(scores.STATE_LABELS[status.state]),
                "last_answer": status.last_answer,
            }
            for status in scores.sync_statuses(self)
        ]
        return render_template(
            "grade_sync.html",
            {
                "heading": _(N_("Grade sync")),
                "note": note,
                "rows": rows,
                "empty": _(N_("No learner has opened this content from a platform yet.")),
                "columns": [
                    _(N_("Learner")),
                    _(N_("Link")),
                    _(N_("Score")),
                    _(N_("Sync")),
                    _(N_("Platform's last answer")),
                ],
            },
        )

    def author_view(self, context: dict[str, Any] | None = None) -> Fragment:
        """Studio's unit page: the launch details, then a preview of the children."""

        def preview_view(child: Any) -> str:
            return "author_view" if hasattr(child, "author_view") else "student_view"

        children = self._children_fragments(context, preview_view)
        return self._render("student.html", {"title": self.shown_title(), **self.launch_details_context()}, children)

    def studio_view(self, context: dict[str, Any] | None = None) -> Fragment:
        """Studio's edit dialog: the settings form and the launch details."""
        # Field labels were marked with N_ where the fields are declared; translate them here by value.
        translate = _
        context = {
            "form_label": _(N_("Settings of the published content")),
            "fields": {
                "display_name": {
                    "label": translate(self.fields["display_name"].display_name),
                    "help": translate(self.fields["display_name"].help),
                    "value": str(self.display_name or ""),
                },
                "grade_sync": {
                    "label": translate(self.fields["grade_sync"].help),
                    "help": _(N_("The platform receives the learner's score out of the maximum score.")),
                    "value": bool(self.grade_sync),
                },
                "require_completion": {
                    "label": translate(self.fields["require_completion"].display_name),
                    "help": translate(self.fields["require_completion"].help),
                    "value": bool(self.require_completion),
                },
                "max_score": {
                    "label": translate(self.fields["max_score"].display_name),
                    "help": translate(self.fields["max_score"].help),
                    "value": f"{float(self.max_score):g}",
                },
                **self.provisioning_fields_context(),
            },
            "save_label": _(N_("Save")),
            "cancel_label": _(N_("Cancel")),
            **self.launch_details_context(),
        }
        fragment = Fragment(render_template("studio.html", context))
        fragment.add_css(self.css_text())
        self.add_script(fragment, "LtiPublishStudio")
        return fragment

    def provisioning_fields_context(self) -> dict[str, Any]:
        """The two provisioning selects: label, help, the modes with Moodle's labels, the mode in force."""
        modes = self.provisioning_modes()
        return {
            field: {
                "label": _(self.fields[field].display_name),
                "help": _(self.fields[field].help),
                "value": getattr(modes, attribute).value,
                "choices": [(mode.value, _(mode.label)) for mode in ProvisioningMode],
            }
            for field, attribute in PROVISIONING_FIELDS
        }

    # ----------------------------------------------------------------- handlers

    @studio_handler
    def save_settings(self, data: Any, suffix: str = "") -> dict[str, Any]:
        """Validate and save the studio form; every field is checked before anything is saved.

        Only the course team may call it (``studio_handler``); so must every other Studio handler.
        """
        if not isinstance(data, dict):
            return {"result": "error", "errors": {"__all__": _(N_("The settings could not be read."))}}
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}

        if "display_name" in data:
            title = data["display_name"]
            if not isinstance(title, str) or not title.strip():
                errors["display_name"] = _(N_("Enter a title."))
            else:
                changes["display_name"] = title.strip()
        if "grade_sync" in data:
            if isinstance(data["grade_sync"], bool):
                changes["grade_sync"] = data["grade_sync"]
            else:
                errors["grade_sync"] = _(N_("Grade sync must be on or off."))
        if "require_completion" in data:
            if isinstance(data["require_completion"], bool):
                changes["require_completion"] = data["require_completion"]
            else:
                errors["require_completion"] = _(N_("Require completion must be on or off."))
        if "max_score" in data:
            score = _parse_max_score(data["max_score"])
            if score is None:
                errors["max_score"] = _(N_("The maximum score must be a number greater than 0."))
            else:
                changes["max_score"] = score
        for field, _attribute in PROVISIONING_FIELDS:
            if field in data:
                if data[field] in {mode.value for mode in ProvisioningMode}:
                    changes[field] = data[field]
                else:
                    errors[field] = _(N_("Choose one of the provisioning modes."))

        if errors:
            return {"result": "error", "errors": errors}
        for name, value in changes.items():
            setattr(self, name, value)
        return {"result": "success"}

    # ---------------------------------------------------------------- workbench

    @staticmethod
    def workbench_scenarios() -> list[tuple[str, str]]:
        """The demo content, two published blocks made of the SDK's sample blocks (so an instructor's
        "Published content" page has more than one item): an introduction and two fraction problems,
        then an introduction and one decimal problem."""
        return [
            (
                "lti-publish: published content",
                """\
<lti_publish display_name="Published content: fractions" grade_sync="true">
    <html_demo>
        <p>Adding fractions that share a denominator: add the numerators, keep the denominator.</p>
    </html_demo>
    <problem_demo>
        <html_demo><p>What is $a/$d + $b/$d? Enter the numerator of the answer over $d.</p></html_demo>
        <textinput_demo name="numerator" input_type="int" />
        <equality_demo name="numerator_checker" left="./numerator/@student_input" right="$c">
            The numerator is right
        </equality_demo>
        <script>
            import random
            d = random.randint(5, 9)
            a = random.randint(1, 2)
            b = random.randint(1, 2)
            c = a + b
        </script>
    </problem_demo>
    <problem_demo>
        <html_demo><p>How many eighths make $n quarters?</p></html_demo>
        <textinput_demo name="eighths" input_type="int" />
        <equality_demo name="eighths_checker" left="./eighths/@student_input" right="$c">
            The number of eighths is right
        </equality_demo>
        <script>
            import random
            n = random.randint(2, 7)
            c = 2 * n
        </script>
    </problem_demo>
</lti_publish>
""",
            ),
            (
                "lti-publish: published content 2",
                """\
<lti_publish display_name="Published content: decimals" grade_sync="true">
    <html_demo>
        <p>Each decimal place is worth ten of the next: one tenth is ten hundredths.</p>
    </html_demo>
    <problem_demo>
        <html_demo><p>How many hundredths make $t tenths?</p></html_demo>
        <textinput_demo name="hundredths" input_type="int" />
        <equality_demo name="hundredths_checker" left="./hundredths/@student_input" right="$c">
            The number of hundredths is right
        </equality_demo>
        <script>
            import random
            t = random.randint(2, 9)
            c = 10 * t
        </script>
    </problem_demo>
</lti_publish>
""",
            ),
        ]
