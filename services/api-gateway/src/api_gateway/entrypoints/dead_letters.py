"""`/api/v1/dead-letters`: messages a consumer gave up on, and replaying one after the fix.

Replay needs an authenticated caller; it will need the admin role once the gateway has roles.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from api_gateway.domain import commands
from api_gateway.domain.auth import Principal
from api_gateway.entrypoints.auth import Authenticate, UowFactory
from api_gateway.service_layer import handlers, views
from api_gateway.service_layer.handlers import Deps


class DeadLetterItem(BaseModel):
    consumer: str = Field(description="The durable consumer that gave up, e.g. `queue__print_requested`.")
    subject: str = Field(description="Where the message was published.")
    message_id: str = Field(description="The message's envelope id (its `Nats-Msg-Id`).")
    error: str = Field(description="Why the last delivery failed.")
    count: int = Field(description="How many times it ended as a dead letter, replays included.")
    last_at: datetime


class DeadLetterList(BaseModel):
    items: list[DeadLetterItem]


class ReplayReply(BaseModel):
    message_id: str
    subject: str
    consumers: list[str] = Field(description="The consumers that had given up on it and now get it again.")


def router(uow_factory: UowFactory, deps: Deps, authenticate: Authenticate) -> APIRouter:
    api = APIRouter(prefix="/api/v1/dead-letters", tags=["gateway"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.get("", response_model=DeadLetterList)
    async def list_dead_letters(_: Caller) -> DeadLetterList:
        items = await views.dead_letters(deps.archive)
        return DeadLetterList(
            items=[
                DeadLetterItem(
                    consumer=i.consumer,
                    subject=i.subject,
                    message_id=i.message_id,
                    error=i.error,
                    count=i.count,
                    last_at=i.last_at,
                )
                for i in items
            ]
        )

    @api.post("/{message_id}/replay", status_code=202, response_model=ReplayReply)
    async def replay_dead_letter(
        message_id: Annotated[str, Path(min_length=1, max_length=200)], caller: Caller
    ) -> ReplayReply:
        cmd = commands.ReplayDeadLetter(message_id, by=caller.name)
        replay = await handlers.replay_dead_letter(cmd, uow_factory(), deps)
        return ReplayReply(message_id=replay.message_id, subject=replay.subject, consumers=list(replay.consumers))

    return api
