"""A stand-in for Moodle's /mod/lti/certs.php on 127.0.0.1, for peers that fetch the key set over HTTP.

By default it runs in a child process, so the server's own CPU time is not charged to the tool being
timed (a real platform serves its key set on its own machine); only the round trip is, which is what
a tool blocked on the fetch really waits for. ``--jwks-server thread`` serves from a thread instead.
"""

from __future__ import annotations

import multiprocessing
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/mod/lti/certs.php"


def _handler(body: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # what urllib speaks: one connection per request

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != PATH:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "max-age=300")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - overrides the stdlib signature
            pass

    return Handler


def _serve(body: bytes, ready: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(body))
    server.daemon_threads = True
    ready.send(server.server_address[1])
    server.serve_forever(poll_interval=0.2)


class JwksServer:
    """Serves ``body`` at http://127.0.0.1:<port>/mod/lti/certs.php until ``close``."""

    def __init__(self, body: bytes, mode: str = "process") -> None:
        self._process: multiprocessing.process.BaseProcess | None = None
        self._server: ThreadingHTTPServer | None = None
        if mode == "process":
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            self._process = ctx.Process(target=_serve, args=(body, child), daemon=True)
            self._process.start()
            if not parent.poll(30):
                self.close()
                raise RuntimeError("the JWKS server did not start")
            port = parent.recv()
        elif mode == "thread":
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(body))
            self._server.daemon_threads = True
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
            port = self._server.server_address[1]
        else:
            raise ValueError(f"unknown JWKS server mode {mode!r}")
        self.url = f"http://127.0.0.1:{port}{PATH}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
