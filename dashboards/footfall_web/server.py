"""uvicorn's server, made to end the live streams first when it stops (open
server-sent-event streams would otherwise hold the shutdown up) and to end with status 0
however many stop signals come."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn

from .state import Web

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server(uvicorn.Server):
    """The streams are ended from the event loop as the shutdown starts, never from
    uvicorn's signal handler: that runs on the main thread between two bytecodes, and
    ending them takes the live state's lock. A second signal (Ctrl-C's SIGINT and then
    the SIGTERM of a stop script) landing while the first one's handler held that lock
    deadlocked the process for good."""

    def __init__(self, config: uvicorn.Config, web: Web) -> None:
        super().__init__(config)
        self.web = web

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.web.close_streams()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, but once served the stop signals are ignored rather than raised
        again: the process ends with status 0 (systemd's "stopped", not "failed"), and a
        signal that comes while Python exits cannot interrupt it halfway."""
        if threading.current_thread() is not threading.main_thread():
            yield  # a server in a thread (the tests): signals are the main thread's
            return
        for sig in STOP_SIGNALS:
            signal.signal(sig, self.handle_exit)
        try:
            yield
        finally:
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
