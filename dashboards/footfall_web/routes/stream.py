"""The board's live stream (server-sent events): a snapshot, then every change of the
wanted sites as paho hands it over, a tick every 15 s, and a fresh snapshot for a client
that fell too far behind. Ends at once when the server stops, and when one of its sites
is removed (after a `sites` event, which also tells the board to reload for a site that
came or changed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from .. import sse
from ..deps import UserDep, WebDep
from ..live import Change
from ..state import CLOSE, Web

KEEPALIVE_S = 15.0
_RESYNC = Change("resync", "", "", {})
router = APIRouter()


def snapshot(web: Web, wanted: set[str]) -> dict[str, Any]:
    return {
        "now": web.now_ms(),
        "sites": web.live.snapshot(sorted(wanted)),
        "sites_version": web.sites_version,
    }


async def live_events(web: Web, request: Request, wanted: set[str]) -> AsyncIterator[bytes]:
    """A snapshot, then every change of the wanted sites; a tick with the server time
    every 15 s (keeps proxies open, lets the board judge staleness); a fresh snapshot
    when this client fell too far behind."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=1000)

    def put(change: Change) -> None:
        try:
            queue.put_nowait(change)
        except asyncio.QueueFull:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(_RESYNC)

    def listener(change: Change) -> None:
        if change.site in wanted or change is CLOSE or change.kind == "sites":
            # RuntimeError: the loop is closed, the server is going away
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(put, change)

    web.live.add_listener(listener)
    if web.closing or not wanted <= set(web.sites):  # stopping, or a site gone already
        web.live.remove_listener(listener)
        return
    event_id = 0
    try:
        yield sse.format_retry(1000)
        yield sse.format_event("snapshot", snapshot(web, wanted))
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected() or not wanted <= set(web.sites):
                    return
                yield sse.format_event("tick", {"now": web.now_ms()})
                continue
            event_id += 1
            if change is CLOSE:
                return
            if change.kind == "sites":
                yield sse.format_event("sites", change.data, event_id)
                if wanted & set(change.data["removed"]):
                    return  # the board reloads; its stream of a removed site ends here
                continue
            if change is _RESYNC:
                # a "sites" event or the shutdown was lost in the overflow
                if web.closing or not wanted <= set(web.sites):
                    return
                yield sse.format_event("snapshot", snapshot(web, wanted))
            else:
                yield sse.format_event(change.kind, change.data, event_id)
    finally:
        web.live.remove_listener(listener)


@router.get("/api/v1/stream", include_in_schema=False, response_model=None)
async def stream(
    request: Request,
    web: WebDep,
    _user: UserDep,
    site: Annotated[list[str] | None, Query()] = None,
) -> StreamingResponse:
    current = web.sites  # read once (the folder may change meanwhile)
    wanted = site or list(current)
    for s in wanted:
        web.site(s, current)
    return StreamingResponse(
        live_events(web, request, set(wanted)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
