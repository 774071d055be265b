"""lti_core is protocol logic only: no module of it may import a web framework, an HTTP client or a database.

Each check runs in a fresh interpreter whose import system refuses the forbidden modules, then imports
every module of the package; any ImportError (or other failure) names the offending module. A name
refuses itself and its submodules (``urllib.request`` refuses ``urllib.request.*``, not ``urllib.parse``).

Two kinds of refusal. The ``FORBIDDEN`` frameworks, clients and drivers may not be loaded at all, not
even by a dependency. The standard library's I/O modules (``STDLIB_IO``) may not be imported by the
package's own modules; the standard library and dependencies do import them for harmless helpers
(``email.utils`` imports ``socket``, which lti_core.cookies and cryptography use for date and address
parsing; oauthlib imports ``urllib.request`` for quoting), and that loads them without any I/O. Outbound
HTTP goes through lti_core.http's port instead, driven by the hosts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STDLIB_IO = ("urllib.request", "socket", "http.client", "sqlite3")
FORBIDDEN = (
    *("django", "webob", "tornado", "jupyterhub", "xblock"),
    *("requests", "httpx", "aiohttp", "psycopg", "psycopg2", "MySQLdb", "sqlalchemy"),
    *STDLIB_IO,
)

CHECK = textwrap.dedent(
    """
    import builtins, importlib, importlib.abc, json, pkgutil, sys, traceback

    package, forbidden, direct_only = sys.argv[1], sys.argv[2].split(","), set(sys.argv[3].split(","))
    anywhere = [name for name in forbidden if name not in direct_only]

    def refused(name, names):
        return any(name == n or name.startswith(n + ".") for n in names)

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if refused(name, anywhere):
                raise ImportError(f"forbidden import of {name!r}")
            return None

    sys.meta_path.insert(0, Refuse())
    for name in [m for m in sys.modules if refused(m, anywhere)]:
        del sys.modules[name]  # anything a .pth file loaded early must be imported again, and fail

    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        # Every import statement of the package's own modules, whether or not the module is loaded yet.
        importer = (globals or {}).get("__name__") or ""
        if level == 0 and (importer == package or importer.startswith(package + ".")):
            for wanted in [name, *(f"{name}.{item}" for item in fromlist or ())]:
                if refused(wanted, direct_only):
                    raise ImportError(f"forbidden import of {wanted!r} by {importer}")
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded_import

    imported, failures = [], {}

    def record_failure(name):
        failures[name] = traceback.format_exc(limit=-3)

    try:
        top = importlib.import_module(package)
    except Exception:
        record_failure(package)
    else:
        imported.append(package)
        for info in pkgutil.walk_packages(top.__path__, package + ".", onerror=record_failure):
            try:
                importlib.import_module(info.name)
                imported.append(info.name)
            except Exception:
                record_failure(info.name)
    print(json.dumps({"imported": imported, "failures": failures}))
    """
)


def check_package(package: str, path: Path) -> dict:
    """Import every module of ``package`` (found under ``path``) with the forbidden packages refused."""
    result = subprocess.run(
        [sys.executable, "-c", CHECK, package, ",".join(FORBIDDEN), ",".join(STDLIB_IO)],
        cwd=path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_lti_core_imports_no_framework():
    report = check_package("lti_core", ROOT)
    assert not report["failures"], "lti_core modules import a framework:\n" + "\n".join(
        f"--- {name}\n{error}" for name, error in report["failures"].items()
    )
    # The walk must really have covered the package, not passed on an empty one.
    for expected in ("lti_core", "lti_core.errors", "lti_core.i18n", "lti_core.types", "lti_core.store"):
        assert expected in report["imported"]


def test_the_check_catches_a_framework_import(tmp_path):
    """The same check fails for a package with modules importing Django, requests, sockets, deep down."""
    package = tmp_path / "fake_core"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "clean.py").write_text("import json\n")
    # urllib.parse is pure string work, and email.utils loads socket without lti_core touching it.
    (package / "parse.py").write_text("from urllib.parse import quote\nimport urllib.parse\nimport email.utils\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "web.py").write_text("from django.http import HttpResponse\n")
    (package / "sub" / "client.py").write_text("def fetch():\n    import requests\n\nimport xblock.core\n")
    # socket is already loaded (by email.utils) when this module asks for it: still refused.
    (package / "sub" / "sockets.py").write_text("import email.utils\nimport socket\n")
    (package / "sub" / "urlopen.py").write_text("import urllib.request\n")
    (package / "sub" / "from_urllib.py").write_text("from urllib import parse, request\n")
    (package / "sub" / "database.py").write_text("import sqlalchemy\n")

    report = check_package("fake_core", tmp_path)
    failures = report["failures"]
    assert set(failures) == {
        f"fake_core.sub.{name}" for name in ("web", "client", "sockets", "urlopen", "from_urllib", "database")
    }
    assert "forbidden import of 'django'" in failures["fake_core.sub.web"]
    assert "forbidden import of 'xblock'" in failures["fake_core.sub.client"]
    assert "forbidden import of 'socket'" in failures["fake_core.sub.sockets"]
    assert "forbidden import of 'urllib.request'" in failures["fake_core.sub.urlopen"]
    assert "forbidden import of 'urllib.request'" in failures["fake_core.sub.from_urllib"]
    assert "forbidden import of 'sqlalchemy'" in failures["fake_core.sub.database"]
    assert {"fake_core.clean", "fake_core.parse"} <= set(report["imported"])
