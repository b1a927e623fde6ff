"""What a node POSTs to the central node: one CloudEvent in structured JSON form."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class NationalEventIn(BaseModel):
    """A CloudEvent (structured mode, ``application/cloudevents+json``); extension
    attributes other than ``traceparent`` are ignored."""

    model_config = ConfigDict(extra="ignore")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=200)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    traceparent: str | None = Field(default=None, max_length=100)


class NationalAccepted(BaseModel):
    event_id: str
    status: Literal["accepted", "duplicate"]


class ForwardOut(BaseModel):
    seq: int
    event_id: str
    dataset: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    forwarded_at: datetime | None


class ForwardsOut(BaseModel):
    enabled: bool
    central_url: str | None
    counts: dict[str, int]
    oldest_pending_at: datetime | None
    link: dict[str, Any]
    feed_cursor: int | None = Field(
        default=None, description="How far this regional node has read central's feed."
    )
    forwards: list[ForwardOut]


class NationalFeed(BaseModel):
    events: list[dict[str, Any]] = Field(
        description="National events in central's order (CloudEvents, structured), the "
        "reading node's own left out."
    )
    next: int = Field(description="Ask again with `after` = this.")
