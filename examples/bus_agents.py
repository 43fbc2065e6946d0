"""Agents of the publish/subscribe example (examples/bus.toml).

The announcer publishes ``article.summarized``; the auditor and the notifier subscribe to it
and react independently, each on the announcer's output. Their side effects are idempotent
(activities run at least once): a retried attempt writes nothing twice.
"""

from __future__ import annotations

from pathlib import Path

from agentflow import Event, State

TOPIC = "article.summarized"


def announcer(event: Event, state: State) -> State:
    """Marks the summary ready and publishes it to whoever subscribes to the topic."""
    out = state.clone()
    out.data["announced"] = True
    out.meta["publish"] = TOPIC
    return out


def auditor(event: Event, state: State) -> None:
    """Appends one line per published event to .agentflow/audit.log (once per event)."""
    title = state.data.get("title") or "Untitled"
    line = (
        f"{event.id} {event.metadata['topic']} from {event.source_agent}: {title!r}, "
        f"summary of {len(state.data.get('summary', '').split())} words\n"
    )
    log = Path(".agentflow") / "audit.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not log.exists() or line not in log.read_text(encoding="utf-8").splitlines(keepends=True):
        with log.open("a", encoding="utf-8") as out:
            out.write(line)


def notifier(event: Event, state: State) -> dict[str, str]:
    """Writes the notification that would be sent to .agentflow/outbox/EVENT_ID.txt."""
    path = Path(".agentflow") / "outbox" / f"{event.id}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    title = state.data.get("title") or "Untitled"
    path.write_text(f"New summary: {title}\n\n{state.data.get('summary', '')}\n", "utf-8")
    return {"notification": str(path)}  # recorded in its result; not merged into the flow
