"""`GET /api/v1/events`: Server-Sent Events of order, job and printer changes.

The resume point comes from the `Last-Event-ID` header (sent by browsers on reconnect) or the
`last_event_id` query parameter (for a first connection that wants to catch up). One from another
gateway version starts live; text that is no event id at all is a 400. The stream ends when the
credential that opened it does (logout, revocation, a disabled account, expiry).
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from api_gateway.domain.auth import Principal
from api_gateway.domain.errors import BadCredentials
from api_gateway.domain.events import is_event_id
from api_gateway.entrypoints.auth import Authenticate
from api_gateway.service_layer.event_hub import EventHub
from servicekit.problems import Problem

log = logging.getLogger(__name__)


def router(hub: EventHub, authenticate: Authenticate) -> APIRouter:
    api = APIRouter(tags=["gateway"])

    @api.get(
        "/api/v1/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "order.updated, order.completed, "
                         "job.updated and printer.updated events; `data` is the resource's new state."}},
    )
    async def events(
        request: Request,
        principal: Annotated[Principal, Depends(authenticate)],
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        resume_from: Annotated[str | None, Query(alias="last_event_id")] = None,
    ) -> StreamingResponse:
        if last_event_id and not is_event_id(last_event_id):
            raise Problem.field("Last-Event-ID", "not an event id sent by this API")
        if resume_from and not is_event_id(resume_from):
            raise Problem.field("last_event_id", "not an event id sent by this API")

        async def still_valid() -> bool:
            try:
                await authenticate(request)
            except (BadCredentials, Problem):
                return False
            except Exception:
                log.exception("could not recheck an event stream's credential; keeping the stream")
            return True

        return StreamingResponse(
            hub.frames(last_event_id or resume_from, principal, still_valid),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return api
