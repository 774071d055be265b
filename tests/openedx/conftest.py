"""The LMS and Studio test harness: run by tests/openedx/run.sh with the LMS's virtualenv, from its edx-platform
checkout, in two pytest sessions: the LMS's (lms_settings, test_lms_*.py) and Studio's (cms_settings, test_cms_*.py).

- MongoDB (course content, GridFS assets) is mongomock: ``pymongo.MongoClient`` gives ONE shared mongomock
  client, GridFS works on it, and the ``ismaster``/``hello`` command the modulestores send is answered.
- What edx-platform's own conftest.py does for its tests: safe XML parsers, no webpack bundles, Site cache kept.
- ``lti_peer`` (the checkout's LTI 1.1 consumer) is importable, from the end of sys.path: lti_xblock and
  lti_core must come from the wheel installed in the LMS's environment, never from the checkout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import mongomock
import mongomock.database
import mongomock.gridfs
import pymongo
import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
EDX_PLATFORM = Path.cwd()

_shared_client = mongomock.MongoClient(tz_aware=True)


def shared_mongo_client(*args: Any, **kwargs: Any) -> mongomock.MongoClient:
    """Every MongoClient the LMS makes (modulestore, contentstore...) is the one in-memory server."""
    return _shared_client


_command = mongomock.database.Database.command


def command(self: mongomock.database.Database, command: Any, **kwargs: Any) -> Any:
    name = command if isinstance(command, str) else next(iter(command))
    if name in ("ismaster", "isMaster", "hello"):
        return {"ok": 1.0, "ismaster": True, "isWritablePrimary": True, "maxWireVersion": 17}
    return _command(self, command, **kwargs)


pymongo.MongoClient = shared_mongo_client
mongomock.database.Database.command = command
mongomock.gridfs.enable_gridfs_integration()

if str(CHECKOUT) not in sys.path:
    sys.path.append(str(CHECKOUT))


TIMES: dict[str, float] = {}


def service() -> str:
    """The service this session runs: "cms" for Studio's (--ds cms_settings, from run.sh), else "lms"."""
    return "cms" if os.environ.get("DJANGO_SETTINGS_MODULE", "").startswith("cms") else "lms"


SERVICE_NAMES = {"lms": ("LMS", "lms_settings"), "cms": ("Studio (CMS)", "cms_settings")}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Each session collects its own service's tests: test_lms_*.py in the LMS's, test_cms_*.py in Studio's."""
    other = "test_lms_" if service() == "cms" else "test_cms_"
    return True if collection_path.name.startswith(other) else None


def process_start() -> float | None:
    try:
        import psutil  # pytest-xdist[psutil] is in the LMS's requirements

        return float(psutil.Process().create_time())
    except Exception:  # the timings are information only
        return None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    TIMES["session_start"] = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Generator[None]:
    start = time.time()
    yield
    if fixturedef.argname == "django_db_setup":
        TIMES["test_database"] = time.time() - start


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How long the LMS (or Studio) takes to start, apart from the tests: what makes this suite slow."""
    end = time.time()
    started = process_start()
    name, settings_module = SERVICE_NAMES[service()]
    lines = []
    if started is not None:
        startup = TIMES["session_start"] - started
        lines.append(f"{name} start-up (Python, pytest, imports, Django setup with {settings_module}): {startup:.1f} s")
    if "test_database" in TIMES:
        database = TIMES["test_database"]
        lines.append(f"test database (SQLite; tables from models, lti_xblock's migrations): {database:.1f} s")
    lines.append(f"session (collection, database, tests): {end - TIMES['session_start']:.1f} s")
    terminalreporter.write_sep("-", f"{name} timings")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    for directory in ("test_root/log", "test_root/uploads"):
        (EDX_PLATFORM / directory).mkdir(parents=True, exist_ok=True)
    # As edx-platform's cms/conftest.py: patch the XML libraries before anything parses XML.
    from openedx.core.lib.safe_lxml import defuse_xml_libs

    defuse_xml_libs()


@pytest.fixture(autouse=True)
def _django_clear_site_cache() -> None:
    """edx-platform's override of pytest-django's fixture (its cms/conftest.py says why)."""


@pytest.fixture(autouse=True)
def no_webpack_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """No compiled webpack bundles here: templates get none (edx-platform's conftest.py does the same)."""
    monkeypatch.setattr("webpack_loader.templatetags.webpack_loader.render_bundle", lambda *a, **k: "")
    monkeypatch.setattr("webpack_loader.utils.get_as_tags", lambda *a, **k: [])
    monkeypatch.setattr("webpack_loader.utils.get_files", lambda *a, **k: [])
