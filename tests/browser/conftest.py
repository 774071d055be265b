"""Fixtures of the browser tests: the XBlock host served over HTTPS on https://localhost:<port>, a
platform whose browser-facing pages are on https://127.0.0.1:<port> (another site), and Chromium."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.browser.tls import make_certificate, server_context


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium the browser tests skip locally and fail in CI (`make test` installs it)."""
    if chromium.available() or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="no Chromium (run `tests/services/chromium.sh deps` or `make test`)")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return server_context(*certificate)


@pytest.fixture(scope="session")
def https_live_server(tls_context: ssl.SSLContext, django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    """The workbench host over HTTPS at https://localhost:<port>, like pytest-django's live_server."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import WSGIRequestHandler
    from django.test.testcases import LiveServerThread

    class HttpsHandler(WSGIRequestHandler):
        def get_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().get_environ()
            environ["wsgi.url_scheme"] = "https"
            environ["HTTPS"] = "on"
            return environ

        def log_message(self, *args: Any) -> None:
            pass

    class HttpsLiveServerThread(LiveServerThread):
        def _create_server(self, connections_override: Any = None) -> Any:
            server = self.server_class(
                (self.host, self.port),
                HttpsHandler,
                allow_reuse_address=False,
                connections_override=connections_override,
            )
            server.socket = tls_context.wrap_socket(server.socket, server_side=True)
            return server

    with django_db_blocker.unblock():
        thread = HttpsLiveServerThread("localhost", StaticFilesHandler)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        try:
            yield f"https://localhost:{thread.port}"
        finally:
            thread.terminate()
