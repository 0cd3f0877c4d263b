"""uvicorn's server, made to end the live streams first when asked to stop (open
server-sent-event streams would otherwise hold the shutdown up)."""

from __future__ import annotations

from types import FrameType

import uvicorn

from .state import Web


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, web: Web) -> None:
        super().__init__(config)
        self.web = web

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.web.close_streams()
        super().handle_exit(sig, frame)
