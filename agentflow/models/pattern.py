"""Event patterns over time windows (``[patterns.NAME]``): the state of one pattern workflow
(one per flow, pattern and key) and the pure rules that advance it. Workflows import this.

An event's time is when the bus's fan-out handed it to the pattern (``PatternEvent.at``), so
an event that waits in Temporal while no worker runs is judged by when it was fanned out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from agentflow.config.patterns import PatternConfig
from agentflow.models.bus import short_id

# Ids of recent events a pattern workflow keeps, to drop a repeated signal (a retried fan-out).
RECENT_IDS = 256
# Events a pattern workflow's run takes before it continues as new (its history stays bounded:
# a signal per event, a few events per workflow task, timer and publish).
EVENTS_PER_RUN = 500


class PatternEvent(BaseModel):
    """One event fed to a pattern workflow by the fan-out."""

    id: str
    topic: str
    at: datetime


class Window(BaseModel):
    """An open window: the events matched so far, and when it closes."""

    ids: list[str] = Field(default_factory=list)
    times: list[datetime] = Field(default_factory=list)
    deadline: datetime


class PatternState(BaseModel):
    """A pattern workflow's input: carried across continue-as-new, so no window is lost."""

    flow: str
    name: str
    key: str
    config: PatternConfig
    windows: list[Window] = Field(default_factory=list)
    pending: list[PatternEvent] = Field(default_factory=list)  # received, not yet applied
    # Matches found, not yet published (a run that has taken its events hands them on).
    unpublished: list[list[str]] = Field(default_factory=list)
    recent: list[str] = Field(default_factory=list)
    matches: int = 0  # derived events published, over every run
    events_per_run: int = EVENTS_PER_RUN


class PatternView(BaseModel):
    """A pattern workflow's query answer (``agentflow patterns``)."""

    flow: str
    name: str
    key: str
    kind: str
    windows: list[Window]
    matches: int


def apply(state: PatternState, event: PatternEvent) -> list[list[str]]:
    """Apply one event; returns the matches it completes (each a list of event ids)."""
    if event.id in state.recent:
        return []
    state.recent = [*state.recent, event.id][-RECENT_IDS:]
    config, within = state.config, timedelta(seconds=state.config.within)
    steps = config.steps(event.topic)
    if not steps:
        return []
    if config.kind == "count":
        window = state.windows[0] if state.windows else Window(deadline=event.at + within)
        keep = [n for n, at in enumerate(window.times) if at + within >= event.at]
        window.ids = [window.ids[n] for n in keep] + [event.id]
        window.times = [window.times[n] for n in keep] + [event.at]
        window.deadline = window.times[0] + within
        state.windows = [window]
        if len(window.ids) >= (config.count or 0):
            state.windows = []
            return [window.ids]
        return []
    # sequence and absence: the oldest window waiting for a later step takes the event.
    for window in state.windows:
        if len(window.ids) in steps and len(window.ids) > 0 and event.at <= window.deadline:
            if config.kind == "absence":  # followed in time: no match
                state.windows.remove(window)
                return []
            window.ids.append(event.id)
            window.times.append(event.at)
            if len(window.ids) == len(config.topics):
                state.windows.remove(window)
                return [window.ids]
            return []
    if 0 in steps:
        state.windows.append(Window(ids=[event.id], times=[event.at], deadline=event.at + within))
    return []


def expire(state: PatternState, now: datetime) -> list[list[str]]:
    """Close the windows whose time is up; an absence's closed window is its match."""
    closed = [window for window in state.windows if window.deadline <= now]
    state.windows = [window for window in state.windows if window.deadline > now]
    return [window.ids for window in closed] if state.config.kind == "absence" else []


def next_deadline(state: PatternState) -> datetime | None:
    return min((window.deadline for window in state.windows), default=None)


def derived_event_id(flow: str, name: str, key: str, ids: list[str]) -> str:
    """The derived event of a match: the same for a retried publish, so the bus dedupes it."""
    return short_id(f"pattern:{flow}.{name}:{key}:{','.join(ids)}")


def publisher_of(flow: str, name: str) -> str:
    """Who publishes a pattern's derived events (``accepts_from`` names it so)."""
    return f"{flow}.patterns.{name}"
