"""The durable half of a publish: what a run records on the bus (``bus_publish``, a local
activity) and what its in-run subscribers are told, the same as a bus delivery.

Deterministic code only: ids derive from the run id, the publishing agent's activity id and
the topic, so a replay (or a retried activity) names the same bus event.
"""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from agentflow.config import FlowConfig
    from agentflow.config.topics import topic_problem
    from agentflow.models.bus import (
        CHAIN,
        KEY,
        PARENT_EVENT,
        PUBLISHER,
        SESSION,
        TOPIC,
        PublishRequest,
        publication_id,
    )
    from agentflow.models.flow import State
    from agentflow.names import PUBLISH_ACTIVITY
    from agentflow.workflows._run import Run


PUBLISH_RETRY = RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(seconds=30),
                            non_retryable_error_types=["ConfigError"])  # fmt: skip


def bus_event_id(activity_id: str, topic: str) -> str:
    return publication_id(workflow.info().run_id, activity_id, topic)


def denied(config: FlowConfig, agent: str, topic: str) -> str | None:
    """Why ``agent`` may not publish ``topic`` (its ``publishes``, or a bad topic name)."""
    problem = topic_problem(topic)
    if problem:
        return f"agent {agent} may not publish to {topic}: {problem}"
    if not config.may_publish(agent, topic):
        return f"agent {agent} may not publish to {topic}"
    return None


def subscriber_metadata(
    config: FlowConfig, topic: str, published_by: str, chain: tuple[str, ...]
) -> dict[str, str]:
    """What an in-run subscriber's event says of the publish: the same as a bus delivery."""
    return {
        TOPIC: topic, PUBLISHER: f"{config.name}.{chain[-1]}", CHAIN: json.dumps(list(chain)),
        PARENT_EVENT: bus_event_id(published_by, topic),
    }  # fmt: skip


def publish_request(
    run: Run, topic: str, state: State, key: str | None, chain: tuple[str, ...],
    activity_id: str, why_denied: str | None,
) -> PublishRequest:  # fmt: skip
    event, config = run.input.event, run.config
    return PublishRequest(
        topic=topic, data=state.data, key=key or event.metadata.get(KEY),
        event_id=bus_event_id(activity_id, topic), session_id=event.metadata.get(SESSION),
        publisher=f"{config.name}.{chain[-1]}", parent_event=event.id, chain=list(chain),
        origin_flow=config.name, denied=why_denied,
    )  # fmt: skip


async def record(request: PublishRequest, activity_id: str) -> str:
    """Record the publish on the bus; the error that fails the run, or ""."""
    try:
        await workflow.execute_local_activity(
            PUBLISH_ACTIVITY, request, activity_id=f"publish-{activity_id}"[:1000],
            start_to_close_timeout=timedelta(seconds=30), retry_policy=PUBLISH_RETRY,
            summary=f"publish {request.topic}",
        )  # fmt: skip
    except FailureError as err:
        return f"publishing {request.topic!r} failed: {err.cause or err}"
    return ""
