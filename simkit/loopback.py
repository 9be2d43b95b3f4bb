"""A threaded HTTP server on 127.0.0.1, run in a background thread: the one lifecycle that
``simkit serve`` and the Kubernetes API fake share (start, port and URL, an idempotent stop, use
as a context manager)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"  # the tools never listen beyond loopback


class LoopbackServer:
    """Owns ``server`` (bound to 127.0.0.1) and the thread that serves it."""

    def __init__(self, server: ThreadingHTTPServer, *, thread_name: str) -> None:
        self._server = server
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=self._thread_name.format(port=self.port),
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close the socket (handler threads are daemons). Idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
