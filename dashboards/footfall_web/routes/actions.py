"""The board's actions on a site: acknowledge or silence an alert (passed on to the
site's footfall-alerts) and retire an agent. Each needs the user's CSRF token or a bearer
token, and is logged with who did it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException

from .. import actions, retire
from ..deps import ACTION_ERRORS, AlertId, CsrfUserDep, WebDep
from ..live import agent_json
from ..models import AgentRetireIn, AlertAckIn, AlertSilenceIn, ErrorOut
from ..state import Web

log = logging.getLogger("footfall_web.app")
router = APIRouter()


def act(web: Web, site: str, alert_id: str, what: str, req: actions.Upstream) -> dict[str, Any]:
    web.site(site)
    try:
        answer = web.call_alerts(site, req)
    except actions.ActionError as exc:
        log.warning("alert %s/%s: %s failed: %s", site, alert_id, what, exc.message)
        raise HTTPException(exc.status, exc.message) from None
    log.info("alert %s/%s: %s (by %s)", site, alert_id, what, req.body.get("by"))
    return answer


@router.post(
    "/api/v1/sites/{site}/alerts/{alert_id}/ack",
    responses=ACTION_ERRORS,
    tags=["alerts"],
    summary="Acknowledge a firing alert (stops its repeats) as the logged-in user",
)
def ack_alert(
    site: str, alert_id: AlertId, body: AlertAckIn, web: WebDep, user: CsrfUserDep
) -> dict[str, Any]:
    return act(web, site, alert_id, "acknowledge", actions.ack_request(alert_id, user, body.reason))


@router.post(
    "/api/v1/sites/{site}/alerts/{alert_id}/silence",
    responses=ACTION_ERRORS,
    tags=["alerts"],
    summary="Silence one alert for some hours as the logged-in user",
    status_code=201,
)
def silence_alert(
    site: str, alert_id: AlertId, body: AlertSilenceIn, web: WebDep, user: CsrfUserDep
) -> dict[str, Any]:
    req = actions.silence_request(alert_id, user, body.reason, body.hours)
    return act(web, site, alert_id, f"silence for {body.hours:g} h", req)


@router.post(
    "/api/v1/sites/{site}/agents/{agent}/retire",
    responses={**ACTION_ERRORS, 409: {"model": ErrorOut}},
    tags=["agents"],
    summary="Retire an agent that is gone for good: off the board and out of the alerts",
)
def retire_agent(
    site: str, agent: AlertId, web: WebDep, user: CsrfUserDep, body: AgentRetireIn | None = None
) -> dict[str, Any]:
    web.site(site)
    force = body is not None and body.force
    try:
        was = retire.retire(web.live, site, agent, force=force, username=web.settings.mqtt.username)
    except actions.ActionError as exc:
        log.warning("agent %s/%s: retire failed: %s", site, agent, exc.message)
        raise HTTPException(exc.status, exc.message) from None
    log.info("agent %s/%s retired by %s", site, agent, user)
    was_json = agent_json(site, agent, was)
    return {"site": site, "agent": agent, "retired": True, "by": user, "was": was_json}
