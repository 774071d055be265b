"""`make demo`: migrate, set up a demo platform, serve the tool on 127.0.0.1, print what to paste."""

from __future__ import annotations

import os
import sys


def main() -> None:
    host = os.environ.get("LTI_PUBLISH_HOST", "127.0.0.1")
    port = int(os.environ.get("LTI_PUBLISH_PORT", "8000"))
    base = f"http://{host}:{port}"
    os.environ.setdefault("LTI_PUBLISH_BASE_URLS", base)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lti_xblock.demo.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from lti_xblock.demo.setup import prepare

    # The workbench app has models but no migrations: run_syncdb creates its tables.
    call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
    print(prepare(base))
    sys.stdout.flush()
    call_command("runserver", f"{host}:{port}", use_reloader=False, insecure_serving=True, use_threading=True)


if __name__ == "__main__":
    main()
