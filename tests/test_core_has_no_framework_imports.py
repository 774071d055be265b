"""lti_core is protocol logic only: no module of it may import a web framework or an HTTP client.

Each check runs in a fresh interpreter whose import system refuses the forbidden packages, then imports
every module of the package; any ImportError (or other failure) names the offending module.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("django", "webob", "tornado", "jupyterhub", "requests", "xblock")

CHECK = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys, traceback

    package, forbidden = sys.argv[1], set(sys.argv[2].split(","))

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in forbidden:
                raise ImportError(f"forbidden import of {name!r}")
            return None

    sys.meta_path.insert(0, Refuse())
    for name in [m for m in sys.modules if m.split(".")[0] in forbidden]:
        del sys.modules[name]  # anything a .pth file loaded early must be imported again, and fail

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
        [sys.executable, "-c", CHECK, package, ",".join(FORBIDDEN)],
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
    """The same check fails for a package with one module importing Django and one requests, deep down."""
    package = tmp_path / "fake_core"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "clean.py").write_text("import json\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "web.py").write_text("from django.http import HttpResponse\n")
    (package / "sub" / "client.py").write_text("def fetch():\n    import requests\n\nimport xblock.core\n")

    report = check_package("fake_core", tmp_path)
    assert set(report["failures"]) == {"fake_core.sub.web", "fake_core.sub.client"}
    assert "forbidden import of 'django'" in report["failures"]["fake_core.sub.web"]
    assert "forbidden import of 'xblock'" in report["failures"]["fake_core.sub.client"]
    assert "fake_core.clean" in report["imported"]
