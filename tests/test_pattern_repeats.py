"""A fan-out that runs again (its bus shard's workflow task was lost, or its local activity
was retried) feeds the same event to a key's pattern workflow again. While the workflow runs,
it drops the repeat; once it has ended, the repeat would start a new run that takes the event
as new. The fan-out's process remembers what it had recorded, so it does not send it again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus

from agentflow.client.bus_filters import Refused
from agentflow.client.bus_patterns import feed_patterns
from agentflow.models.bus import TOPIC, PublishRequest, Registration, short_id
from agentflow.models.flow import Event
from agentflow.names import pattern_workflow_id
from tests.test_bus_durable import served, unique, until
from tests.test_patterns import pattern_flow

COMPLETED = str(WorkflowExecutionStatus.COMPLETED)


async def test_a_repeated_fan_out_after_the_key_ended_starts_no_new_run(client: Client) -> None:
    p = unique("rep")
    # Two events of a key within 1 s make a match; one alone closes its window and the key's
    # workflow ends 100 ms later, having matched nothing.
    flow = pattern_flow(unique("repeats"), p, {
        "pair": {"kind": "count", "topic": f"{p}.hit", "count": 2, "within": "1s",
                 "key": "data.k", "publish": f"{p}.derived.pair", "linger": "100ms"},
    })  # fmt: skip
    registrations = {flow.name: Registration(flow=flow.name, task_queue="q", config=flow)}
    request = PublishRequest(topic=f"{p}.hit", data={"k": "k1"}, event_id=f"{p}-e1",
                             publisher="client test")  # fmt: skip
    event = Event(id=request.event_id, session_id="shard-0", data={"k": "k1"},
                  metadata={TOPIC: request.topic}, timestamp=datetime.now(UTC))  # fmt: skip
    workflow_id = short_id(pattern_workflow_id(flow.name, "pair", "k1"))

    async def runs() -> list[str]:
        query = f"WorkflowId = '{workflow_id}'"
        return [str(run.status) async for run in client.list_workflows(query)]

    async with served(client, flow):
        assert await feed_patterns(client, registrations, event, request, Refused()) == 1

        async def ended() -> bool:
            return (await runs()) == [COMPLETED]

        await until(ended)
        # The fan-out again, as after a lost workflow task: the same event, the same key.
        assert await feed_patterns(client, registrations, event, request, Refused()) == 1
        description = await client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert await runs() == [COMPLETED]  # no second run took the event as new
