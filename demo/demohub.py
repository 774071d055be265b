"""The demo's JupyterHub: a real hub on loopback with the LTI 1.3 authenticator, for `make demo`.

    hub = DemoHub(state_dir, DemoPlatform(issuer=..., client_id=..., authorize_url=..., jwks_endpoint=...))
    hub.start()          # HubNotStarted(reason) if it cannot; then nothing is left running
    ...
    hub.stop()           # the hub stops its users' servers and its proxy; survivors are ended

The hub runs from this virtualenv behind the project's configurable-http-proxy (node_modules/),
spawns JupyterLab with SimpleLocalProcessSpawner (no system users: homes are directories in the
state directory) and copies a welcome notebook into every new home. Everything it writes stays in
the state directory. Demo code: SimpleLocalProcessSpawner gives users no isolation from each other.

Running the hub is demo.hubprocess's (shared with the tests' hub): JupyterHub starts the proxy
and each single-user server in a session of their own, so signals to the hub's process group do not
reach them: the hub stops them itself on SIGTERM, and ``stop`` ends any process it saw below the hub
that outlived it (Linux: read from /proc). The demo's hub also gets SIGTERM if the process that
started it dies without stopping it.

Not imported by the hub's own code, and imports nothing from JupyterHub at module level.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.hubprocess import REPO, HubChild, port_in_use

WELCOME_NOTEBOOK = "welcome.ipynb"
#: The custom parameter a launch carries so that it opens the welcome notebook (see LtiAuthenticator).
NEXT = f"lab/tree/{WELCOME_NOTEBOOK}"
#: Extra hub settings an admin adds (a platform from Moodle, ...): read at each start when it exists.
LOCAL_CONFIG = "jupyterhub_config.local.py"


class HubNotStarted(RuntimeError):
    """Why the demo hub is not running (a sentence for the person running the demo)."""


@dataclass(frozen=True)
class HubPorts:
    public: int = 8001  # the proxy's: the URL people and platforms use
    proxy_api: int = 8002
    hub: int = 8003  # the hub's own, behind the proxy


@dataclass(frozen=True)
class DemoPlatform:
    """The LTI 1.3 platform the demo hub trusts (the demo's local launch page)."""

    issuer: str
    client_id: str
    authorize_url: str
    jwks_endpoint: str
    token_url: str = ""
    deployment_id: str = "1"
    name: str = "Demo launch page"


@dataclass(frozen=True)
class HubLti13Urls:
    """What a platform registers for a hub served at ``base`` (e.g. ``http://127.0.0.1:8001/``)."""

    base: str

    @property
    def hub(self) -> str:
        return self.base.rstrip("/") + "/hub/"

    @property
    def login(self) -> str:
        return self.hub + "lti13/oauth_login"

    @property
    def launch(self) -> str:
        """Tool URL (target_link_uri) and redirect URI at once."""
        return self.hub + "lti13/oauth_callback"

    @property
    def jwks(self) -> str:
        return self.hub + "lti13/jwks"

    @property
    def config(self) -> str:
        return self.hub + "lti13/config"


# --- what the hub config uses ----------------------------------------------------------------------


def welcome_notebook() -> Any:
    """A small nbformat 4 notebook: where the learner landed, and what the launch passed on."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    notebook = new_notebook(
        cells=[
            new_markdown_cell(
                "# Welcome to the lti-publish demo JupyterHub\n"
                "\n"
                "You arrived here through a real **LTI 1.3 launch**: the demo's local launch page, acting as "
                "the platform, sent a signed `id_token`; the hub's `jupyter_lti.lti13.LTI13Authenticator` "
                "checked it, signed you in as a hub user and started this JupyterLab for you. The launch's "
                f"custom parameter `next={NEXT}` opened this notebook.\n"
                "\n"
                "From Moodle it works the same way: add the hub as an External tool (LTI 1.3) with what "
                "`make demo` printed."
            ),
            new_code_cell(
                "import os\n"
                "\n"
                "# What the hub passed on from the launch (c.Spawner.auth_state_hook in the demo hub's config).\n"
                'for name in ("JUPYTERHUB_USER", "LTI_NAME", "LTI_ROLE", "LTI_CONTEXT_TITLE", "LTI_PLATFORM"):\n'
                "    print(f\"{name:18} {os.environ.get(name, '')}\")"
            ),
            new_code_cell("sum(1 / n**2 for n in range(1, 10_000))  # close to pi**2 / 6"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return notebook


def copy_welcome_notebook(source: str) -> Callable[[Any], None]:
    """A ``Spawner.pre_spawn_hook``: put ``source`` in the user's home unless a copy is there already."""

    def hook(spawner: Any) -> None:
        home = Path(spawner.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        target = home / Path(source).name
        if not target.exists():
            shutil.copyfile(source, target)

    return hook


def expose_launch(spawner: Any, auth_state: dict[str, Any] | None) -> None:
    """A ``Spawner.auth_state_hook``: a few facts of the last launch as the server's environment."""
    lti = (auth_state or {}).get("lti") or {}
    person = lti.get("person") or {}
    context = lti.get("context") or {}
    spawner.environment = {
        **spawner.environment,
        "LTI_NAME": str(person.get("name") or ""),
        "LTI_ROLE": str(lti.get("role") or ""),
        "LTI_CONTEXT_TITLE": str(context.get("title") or ""),
        "LTI_PLATFORM": str(lti.get("platform") or ""),
    }


# --- the hub ---------------------------------------------------------------------------------------


class DemoHub(HubChild):
    """One JupyterHub (and its proxy) on ``host``, its state in ``state_dir``; see the module docstring."""

    append_log = False  # a new log at each `make demo`
    die_with_parent = True
    install_hint = "the jupyterhub extra (`make demo` installs it)"

    def __init__(
        self, state_dir: Path, platform: DemoPlatform, *, host: str = "127.0.0.1", ports: HubPorts | None = None
    ) -> None:
        self.ports = ports or HubPorts()
        super().__init__(
            state_dir, port=self.ports.public, proxy_api_port=self.ports.proxy_api, hub_port=self.ports.hub, host=host
        )
        self.state_dir = self.workdir
        self.platform = platform
        self.urls = HubLti13Urls(self.url)
        self.local_config_path = self.state_dir / LOCAL_CONFIG
        self.welcome_path = self.state_dir / WELCOME_NOTEBOOK

    # -- files ---------------------------------------------------------------------------------

    def chp_command(self) -> str:
        return super().chp_command() or shutil.which("configurable-http-proxy") or ""

    def config_text(self) -> str:
        p = self.platform
        lines = [
            "# Written by `make demo` (demo/demohub.py) at each start: edits here are lost.",
            f"# Your own settings (e.g. a Moodle platform) go in {self.local_config_path}.",
            "import os",
            "import sys",
            "",
            "# The hooks below come from the checkout's demo package (not installed, not in the wheel).",
            f"sys.path.insert(0, {str(REPO)!r})",
            "from demo.demohub import copy_welcome_notebook, expose_launch",
            "",
            "c = get_config()  # noqa",
            "# The hub behind its proxy, and JupyterLab for each user from this virtualenv, with a home in",
            "# the demo's state directory.",
            *self.process_config_lines(),
            f"c.Spawner.pre_spawn_hook = copy_welcome_notebook({str(self.welcome_path)!r})",
            "c.Spawner.auth_state_hook = expose_launch",
            "",
            "# The LTI 1.3 authenticator, trusting the demo's local launch page as a platform.",
            'c.JupyterHub.authenticator_class = "lti13"',
            f"c.LTI13Authenticator.issuer = {p.issuer!r}",
            f"c.LTI13Authenticator.client_id = [{p.client_id!r}]",
            f"c.LTI13Authenticator.authorize_url = {p.authorize_url!r}",
            f"c.LTI13Authenticator.jwks_endpoint = {p.jwks_endpoint!r}",
            f"c.LTI13Authenticator.token_url = {p.token_url!r}",
            f"c.LTI13Authenticator.deployment_ids = [{p.deployment_id!r}]",
            'c.LTI13Authenticator.tool_name = "lti-publish demo JupyterHub"',
            "# What teachers may add with the demo page's Select content: the welcome notebook.",
            f'c.LTI13Authenticator.catalog = [{{"id": "welcome", "title": "Welcome notebook", '
            f'"path": {WELCOME_NOTEBOOK!r}, "max_score": 10}}]',
            "",
            f"if os.path.exists({str(self.local_config_path)!r}):",
            f"    load_subconfig({str(self.local_config_path)!r})  # noqa: F821",
        ]
        return "\n".join(lines) + "\n"

    def write_files(self) -> None:
        import nbformat

        self.homes.mkdir(exist_ok=True)
        nbformat.write(welcome_notebook(), str(self.welcome_path))
        super().write_files()

    def crypt_key(self) -> str:
        """The key JupyterHub encrypts auth_state (the launch context) with, kept across runs."""
        path = self.state_dir / "jupyterhub_crypt_key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def hub_env(self) -> dict[str, str]:
        env = {k: v for k, v in super().hub_env().items() if not k.startswith(("DJANGO_", "LTI_PUBLISH_"))}
        env["JUPYTERHUB_CRYPT_KEY"] = self.crypt_key()
        return env

    # -- running -------------------------------------------------------------------------------

    def start_error(self, message: str, *, timed_out: bool = False) -> Exception:
        return HubNotStarted(message)

    def check(self) -> None:
        """What must be there before starting; HubNotStarted says what is missing, and how to get it."""
        super().check()
        if shutil.which("node") is None:
            raise HubNotStarted("node is not on PATH (configurable-http-proxy runs on Node.js)")
        for name, port in (("public", self.ports.public), ("proxy API", self.ports.proxy_api), ("hub", self.ports.hub)):
            if port_in_use(self.host, port):
                raise HubNotStarted(f"port {port} ({name}) on {self.host} is in use (another `make demo`?)")

    # -- what `make demo` prints ----------------------------------------------------------------

    def instructions(self) -> list[str]:
        u = self.urls
        return [
            f"JupyterHub (LTI 1.3; JupyterLab for each user): {u.hub}",
            '  Local launch page buttons: "Learner · JupyterHub (LTI 1.3)", "Instructor · JupyterHub (LTI 1.3)"',
            f"  Ports: {self.ports.public} public (proxy), {self.ports.proxy_api} proxy API, {self.ports.hub} hub.",
            f"  State, homes and log: {self.state_dir}/ (jupyterhub.log)",
            "  Moodle: Site administration > Plugins > Activity modules > External tool > Manage tools >",
            "          configure a tool manually:",
            f"    Tool URL:            {u.launch}",
            "    LTI version:         LTI 1.3",
            "    Public key type:     Keyset URL",
            f"    Public keyset:       {u.jwks}",
            f"    Initiate login URL:  {u.login}",
            f"    Redirection URI(s):  {u.launch}",
            f"    Custom parameters:   next={NEXT}",
            f"    (the same as JSON:   {u.config})",
            "  then, with what Moodle shows in the tool's configuration details, add the platform to the hub",
            f"  in {self.local_config_path} (read at each start; restart `make demo`),",
            '  or in your own hub\'s jupyterhub_config.py (with c.JupyterHub.authenticator_class = "lti13"):',
            "      c.LTI13Authenticator.platforms.append({",
            '          "issuer": "<Platform ID>",  # e.g. https://moodle.example.org',
            '          "client_id": "<Client ID>",',
            '          "deployment_ids": ["<Deployment ID>"],',
            '          "authorize_url": "<Authentication request URL>",  # .../mod/lti/auth.php',
            '          "jwks_endpoint": "<Public keyset URL>",  # .../mod/lti/certs.php',
            '          "token_url": "<Access token URL>",  # .../mod/lti/token.php',
            '          "name": "Moodle",',
            "      })",
            "",
        ]
