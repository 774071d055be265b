"""`make demo` (`python -m demo`): migrate, set up a demo platform, start the demo JupyterHub and the grade
delivery loop, serve the tool on 127.0.0.1, print what to paste. Ctrl-C or SIGTERM stops everything, the
hub's proxy and users' servers too.

`python -m demo lti-publish COMMAND ...` runs the admin command line (lti_xblock.cli) on the demo's
database: `lti-publish` itself needs a site's settings and never falls back to the demo's.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM as Ctrl-C: runserver then returns and the finally below stops the hub."""
    raise KeyboardInterrupt


#: Every process of the demo runs with the demo's settings, whatever DJANGO_SETTINGS_MODULE says outside.
SETTINGS = "demo.settings"


def lti_publish(argv: list[str]) -> None:
    """`lti-publish ARGS` with the demo's settings (its database in var/, or $LTI_PUBLISH_VAR)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    from lti_xblock.cli import main as cli

    cli(argv)


def main() -> None:
    if sys.argv[1:2] == ["lti-publish"]:
        lti_publish(sys.argv[2:])
        return
    if sys.argv[1:]:
        sys.exit(
            "usage: python -m demo                            serve the demo\n"
            "       python -m demo lti-publish COMMAND ...    the admin commands, on the demo's database"
        )
    host = os.environ.get("LTI_PUBLISH_HOST", "127.0.0.1")
    port = int(os.environ.get("LTI_PUBLISH_PORT", "8000"))
    base = f"http://{host}:{port}"
    os.environ.setdefault("LTI_PUBLISH_BASE_URLS", base)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from demo import grade_loop
    from demo import hub as demo_hub
    from demo.prepare import prepare

    # The workbench app has models but no migrations: run_syncdb creates its tables.
    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    print(prepare(base))
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, _interrupt)
    stop_grades = grade_loop.start()  # no Celery in the demo: this thread sends the scores to the platform
    hub = None
    try:
        hub, text = demo_hub.start(base, host, settings.VAR_DIR)
        print(text)
        sys.stdout.flush()
        call_command("runserver", f"{host}:{port}", use_reloader=False, insecure_serving=True, use_threading=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop_grades()
        # Stopping takes a few seconds: a second Ctrl-C must not leave the hub's processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if hub is not None:
            print("Stopping the demo JupyterHub (its proxy and users' servers) ...", flush=True)
            hub.stop()
            print("JupyterHub stopped.", flush=True)


if __name__ == "__main__":
    main()
