"""The tool's JWKS endpoint, served on loopback for tests and benchmarks that run lti_core without a
host: the peer's token endpoint fetches the tool's keys from it, as a platform fetches a real tool's."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def serve_tool_jwks(jwks: Callable[[], dict[str, Any]]) -> Iterator[str]:
    """Serve ``jwks()`` (read at every request, so a rotation shows) and yield its URL."""

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            data = json.dumps(jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()  # prompt stops
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    finally:
        server.shutdown()
        server.server_close()
