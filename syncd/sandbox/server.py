"""Serve emulator apps on real ports: one in a background thread (tests), or several (CLI).

with serve_in_thread(emulator.app) as server:     # port 0 = any free port
    httpx.get(f"{server.url}/_sandbox/stats")
serve({8101: wix.app, 8102: square.app})          # blocks until Ctrl-C
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT_SECONDS = 10.0


def _config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )


class RunningServer:
    """A uvicorn server running in a daemon thread; `stop()` (or leaving `with`) ends it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int):
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_SECONDS)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start `app` on host:port in a background thread; returns once it accepts connections."""
    server = uvicorn.Server(_config(app, host, port))
    thread = threading.Thread(target=server.run, name=f"sandbox-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"sandbox server on {host}:{port} did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    _wait_until_accepting(host, bound, deadline)
    return RunningServer(server, thread, host, bound)


def _wait_until_accepting(host: str, port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def serve(apps_by_port: Mapping[int, ASGIApp], host: str = "127.0.0.1") -> None:
    """Serve each app on its port until interrupted (the `syncd sandbox` command)."""

    async def main() -> None:
        servers = [uvicorn.Server(_config(app, host, port)) for port, app in apps_by_port.items()]
        await asyncio.gather(*(s.serve() for s in servers))

    # Each uvicorn server chains the signal handler of the one started before it, so one
    # Ctrl-C stops them all; the last one re-raises SIGINT, which ends here.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
