"""Every name agentflow gives Temporal: workflow and activity types, signals, updates, queries,
search attributes, memo keys, task queues and workflow id formats. One module, so that the
workflows that register a name and the clients, CLI and trace that use it cannot drift apart.

They are recorded in histories: renaming one breaks the runs that are in flight (and the golden
histories in ``tests/histories/``). Add names; never change one.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

# --- Workflow types ----------------------------------------------------------------------------
SEQUENTIAL_WORKFLOW = "SequentialFlow"
ROUTE_WORKFLOW = "RouteFlow"
COLLABORATIVE_WORKFLOW = "CollaborativeFlow"
LOOP_WORKFLOW = "LoopFlow"
MIXED_WORKFLOW = "MixedFlow"
# The workflow that runs a flow of each orchestration mode.
MODE_WORKFLOWS = {
    "route": ROUTE_WORKFLOW,
    "sequential": SEQUENTIAL_WORKFLOW,
    "collaborative": COLLABORATIVE_WORKFLOW,
    "loop": LOOP_WORKFLOW,
    "mixed": MIXED_WORKFLOW,
}
SESSION_WORKFLOW = "AgentflowSession"
DEAD_LETTER_WORKFLOW = "AgentflowDeadLetter"
REGISTRY_WORKFLOW = "AgentflowBusRegistry"
MEMORY_INGEST_WORKFLOW = "AgentflowMemoryIngest"  # `agentflow memory ingest`: files into memory
# One per (flow, [patterns.NAME], key): its open windows, fed by the bus's fan-out.
PATTERN_WORKFLOW = "AgentflowPattern"
# A batched subscriber's deliveries, gathered into batches (workflows/batcher.py).
BATCHER_WORKFLOW = "AgentflowBatcher"

# --- Activity types ----------------------------------------------------------------------------
# Runs started before the ``agent-activity-type`` patch (workflows/_calls.py) call every agent
# as ``run_agent``; since then each agent is its own type, ``agent:NAME``, served by one dynamic
# activity on the worker. Why: the Temporal UI, ``temporal workflow show`` and the SDK's own
# activity metrics (``activity_type``) label rows by type, and ``run_agent`` told no agent apart.
# Whatever reads histories must understand both.
RUN_AGENT = "run_agent"
AGENT_TYPE_PREFIX = "agent:"
RUN_HOOKS = "run_hooks"  # [hooks] callbacks around an event or an agent
RUN_TOOL = "run_tool"  # one tool call of an LLM agent
LOCAL_BATCH = "run_local_agents"  # consecutive local agents of a sequence
SESSION_CHECKPOINT = "session_checkpoint"  # a session ends its workflow task here
PUBLISH_ACTIVITY = "bus_publish"  # an agent's meta["publish"] recorded on the durable bus
ROUTE_ACTIVITY = "decide_route"  # route mode's [[orchestration.routes]] on an event (CEL)
MEMORY_INGEST_FILE = "memory_ingest_file"  # one file chunked, embedded and stored
MEMORY_RETRIEVE = "memory_retrieve"  # what a memory-enabled agent recalls for its input
MEMORY_REMEMBER = "memory_remember"  # a memory-enabled agent's turn, kept in its session
# A completed agent's `compensate` function, when its run fails for good (a saga).
RUN_COMPENSATION = "run_compensation"
# A batch of bus deliveries recorded in its subscriber's session, as one event.
BATCH_DELIVER_ACTIVITY = "batch_deliver"

# --- Signals, updates and queries --------------------------------------------------------------
PROGRESS_QUERY = "progress"  # every flow run: FlowProgress
DECIDE_UPDATE = "decide"  # settles an approval (any client, knowing only the workflow id)
APPROVALS_QUERY = "approvals"  # what waits for a person
EMIT_SIGNAL = "emit"  # a session: an event, fire and forget
EMIT_AND_WAIT_UPDATE = "emit_and_wait"  # a session: an event, and wait for its outcome
# a session: an event whose config the session has (by its key), and wait for its outcome
EMIT_BY_KEY_UPDATE = "emit_and_wait_by_key"
# a session: an event whose config this process sent the session before (by its key)
EMIT_BY_KEY_SIGNAL = "emit_by_key"
EVENT_RESULT_UPDATE = "event_result"  # a session: the outcome of an event sent before
CLOSE_UPDATE = "close"  # a session: take no more events, finish the queued ones
SESSION_QUERY = "session"  # a session: SessionView
BATCH_ADD_SIGNAL = "batch_add"  # a batcher: one bus delivery
BATCH_ADD_MANY_SIGNAL = "batch_add_many"  # a batcher: bus deliveries, in order
BATCHER_QUERY = "batcher"  # a batcher: what waits and how many batches went out
LETTER_QUERY = "letter"  # a dead letter: DeadLetterView
REDRIVEN_UPDATE = "redriven"  # a dead letter was sent back to its session
PURGE_UPDATE = "purge"  # a dead letter is dropped
REGISTER_UPDATE = "register"  # the bus registry: a worker's subscriptions
# The bus registry: a flow's subscriptions, recorded without waiting for any worker
# (``agentflow register``, and every worker at start).
REGISTER_SIGNAL = "register_flow"
FORGET_UPDATE = "forget"  # the bus registry: a worker's subscriptions, gone
REGISTRY_QUERY = "subscriptions"  # the bus registry: every registration
INGEST_PROGRESS_QUERY = "ingest_progress"  # a memory ingestion: files and chunks done
PATTERN_SIGNAL = "pattern_event"  # a pattern workflow: an event of a topic it watches
PATTERN_QUERY = "pattern_windows"  # a pattern workflow: its open windows (PatternView)

# --- Search attributes and memo keys -----------------------------------------------------------
FLOW_ATTRIBUTE = "AgentflowFlow"
MODE_ATTRIBUTE = "AgentflowMode"
SESSION_ATTRIBUTE = "AgentflowSession"
# Set only while agents wait for approval: the names of those agents (`agentflow pending` and
# the UI's filter box find waiting runs with it).
APPROVAL_ATTRIBUTE = "AgentflowApproval"
# What `agentflow dev` registers on its server (other clusters: create them once).
SEARCH_ATTRIBUTES = {
    FLOW_ATTRIBUTE: "Keyword",
    MODE_ATTRIBUTE: "Keyword",
    SESSION_ATTRIBUTE: "Keyword",
    APPROVAL_ATTRIBUTE: "KeywordList",
}
FLOW = SearchAttributeKey.for_keyword(FLOW_ATTRIBUTE)
MODE = SearchAttributeKey.for_keyword(MODE_ATTRIBUTE)
SESSION = SearchAttributeKey.for_keyword(SESSION_ATTRIBUTE)
APPROVAL = SearchAttributeKey.for_keyword_list(APPROVAL_ATTRIBUTE)
# Memo keys: the approvals waiting now (read by `agentflow pending` with no worker running),
# and the change each upsert records (the trace reads one line from each).
WAITING_MEMO = "agentflow_approvals"
CHANGE_MEMO = "agentflow_approval"

# The OpenTelemetry instrumentation name of agentflow's spans and metrics.
INSTRUMENTATION = "agentflow"

# --- Task queues, handlers and workflow ids ----------------------------------------------------
# A flow's own task queue, used unless its [temporal] task_queue names one: runs of a flow
# reach only workers that serve it. The flow name is at most 200 bytes, so the queue is far
# within Temporal's 1,000 (and its rate-limited agents' ``QUEUE-agent-NAME`` queues too).
FLOW_TASK_QUEUE_PREFIX = "agentflow:"
# The task queue every flow used by default before each flow had its own (runs started then
# stay on it: ``agentflow worker --task-queue agentflow`` serves them).
LEGACY_TASK_QUEUE = "agentflow"
BUS_FLOW = "agentflow-bus"
BUS_TASK_QUEUE = "agentflow-bus"
REGISTRY_WORKFLOW_ID = "agentflow-bus:registry"
# A pattern workflow's id: ``agentflow-pattern:FLOW:PATTERN:KEY`` (``agentflow patterns``
# lists them by type; the prefix finds them in the UI).
PATTERN_ID_PREFIX = "agentflow-pattern:"
# A memory ingestion's workflow id: the flow and a hash of the files' paths and contents, so
# the same files ingested twice while the first ingestion runs start one workflow.
MEMORY_INGEST_ID_PREFIX = "agentflow-memory-ingest:"
# A remembered turn's source in a memory store, before the agent's name (the CLI's
# `agentflow memory forget agent:NAME --session ID` names it so).
MEMORY_TURN_SOURCE_PREFIX = "agent:"
# The bus's fan-out agent is registered under this handler key on every worker (a key, not an
# import path: it is in the config snapshot of bus runs, so it stays as first recorded).
FAN_OUT_HANDLER = "agentflow.bus_client:fan_out"


def agent_activity_type(agent: str) -> str:
    """The activity type ``agent`` runs as: ``agent:NAME``."""
    return f"{AGENT_TYPE_PREFIX}{agent}"


def agent_of(activity_type: str) -> str | None:
    """The agent an ``agent:NAME`` type names; None for any other type (``run_agent``
    names no agent: its input does)."""
    if activity_type.startswith(AGENT_TYPE_PREFIX):
        return activity_type[len(AGENT_TYPE_PREFIX) :]
    return None


def is_agent_call(activity_type: str) -> bool:
    """Whether an activity of this type is an agent call (either form)."""
    return activity_type == RUN_AGENT or activity_type.startswith(AGENT_TYPE_PREFIX)


def flow_task_queue(flow: str) -> str:
    """The task queue of ``flow``'s runs when its ``[temporal] task_queue`` is unset."""
    return f"{FLOW_TASK_QUEUE_PREFIX}{flow}"


def agent_queue(task_queue: str, agent: str) -> str:
    """The task queue of a rate-limited agent's activities."""
    return f"{task_queue}-agent-{agent}"


def session_workflow_id(flow: str, session_id: str) -> str:
    return f"{flow}:session:{session_id}"


def dead_letter_workflow_id(flow: str, session_id: str, event_id: str) -> str:
    return f"{flow}:dead-letter:{session_id}:{event_id}"


def batcher_workflow_id(flow: str, agent: str) -> str:
    """The batcher of a batched subscriber (one per flow and agent)."""
    return f"{flow}:batcher:{agent}"


def pattern_workflow_id(flow: str, pattern: str, key: str) -> str:
    """The workflow of one ``[patterns.NAME]`` of ``flow`` for one key (the caller shortens
    an id longer than Temporal takes)."""
    return f"{PATTERN_ID_PREFIX}{flow}:{pattern}:{key}"
