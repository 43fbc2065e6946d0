"""Agents of the route example: a support ticket is triaged and handed to a specialist."""

from __future__ import annotations

from typing import Any

from agentflow import Event, FatalError, State

TOPICS = {
    "billing": ("invoice", "refund", "charge", "charged", "payment", "price", "subscription"),
    "technical": ("error", "crash", "bug", "timeout", "login", "install", "broken"),
}
URGENT = ("down", "outage", "urgent", "data loss", "security")


def _ticket(state: State) -> str:
    ticket = state.data.get("ticket")
    if not isinstance(ticket, str) or not ticket.strip():
        raise FatalError("input needs a non-empty string field 'ticket'")
    return ticket.lower()


def triage(event: Event, state: State) -> State:
    """Hands the ticket to the team whose keywords it mentions most."""
    ticket = _ticket(state)
    hits = {team: sum(word in ticket for word in words) for team, words in TOPICS.items()}
    team = max(hits, key=lambda name: hits[name]) if any(hits.values()) else "general"
    out = state.clone()
    out.data["triage"] = {"team": team, "keyword_hits": hits}
    out.meta["route"] = team
    return out


def billing(event: Event, state: State) -> dict[str, Any]:
    return {"reply": "Billing will review the charge and answer within one business day."}


def technical(event: Event, state: State) -> State:
    """Answers, and escalates tickets that mention an outage or data loss."""
    ticket = _ticket(state)
    out = state.clone()
    out.data["reply"] = "An engineer is looking at the problem; we will send the fix steps."
    if any(word in ticket for word in URGENT):
        out.meta["route"] = "escalation"
    return out


def general(event: Event, state: State) -> dict[str, Any]:
    return {"reply": "Thanks for writing; a member of the team will get back to you."}


def escalation(event: Event, state: State) -> dict[str, Any]:
    return {"escalated": True, "priority": "P1"}
