"""LLM agents: an agent with no ``handler`` asks its model (pydantic-ai), one model step per
activity.

The first step sends the system prompt and the state (``data["message"]`` when it is text,
else the state's data as JSON). A model that answers ends the agent: the reply is stored as
``data[agent]`` and ``data["message"]`` (validated data under ``output_schema``). A model that
asks for tools ends the step instead: the step returns the calls and the conversation so far
(``LLMTurn``), the workflow runs the calls, and the next step goes on from there
(workflows/_llm_loop.py). Every step reports its usage.

The model is asked with streaming on: the reply's text goes to the run's live stream as it
arrives (agentflow/tokens.py batches it; a retried attempt is marked there); a reply that ends
before its first batch goes with the result instead (``hold``: no signal). Only text is
streamed, never tool-call arguments or the structured reply of an ``output_schema``; the
result is the same as without streaming. A local activity streams nothing (tokens.py says why).
An agent with ``stream = false`` asks for the whole reply at once (no token stream, the same
result), which is cheaper when nobody reads its tokens.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import jsonschema
import pydantic
from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, StructuredDict
from pydantic_ai.agent import EventStreamHandler
from pydantic_ai.exceptions import ModelRetry
from pydantic_ai.messages import (
    AgentStreamEvent,
    ModelMessagesTypeAdapter,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.tools import RunContext
from pydantic_ai.toolsets import ExternalToolset
from temporalio.exceptions import ApplicationError

from agentflow.activities.llm_models import as_failure, config_error, model_for, settings_for
from agentflow.activities.llm_notices import log_once, probe, quietly
from agentflow.activities.llm_tools import tool_call, tool_definitions
from agentflow.activities.registry import AgentRegistry
from agentflow.activities.tokens import TokenPush, token_stream
from agentflow.config.llm import ResolvedLLM, merge_llm
from agentflow.models.flow import AgentInput, State
from agentflow.models.llm import LLMReply, LLMTurn, ToolReturn
from agentflow.models.recall import memory_prompt
from agentflow.models.usage import Usage

# How often a reply that does not fit output_schema goes back to the model with the reason.
OUTPUT_RETRIES = 2


async def call_llm(request: AgentInput, state: State, registry: AgentRegistry) -> LLMReply:
    """One model step of ``request.agent``."""
    agent, spec = request.agent, request.spec
    llm = resolved(request)
    output, check = _output_type(agent, spec.output_schema, registry)
    definitions, sources = await tool_definitions(request, registry)
    outputs: list[Any] = [output, DeferredToolRequests] if definitions else [output]
    model = model_for(agent, llm)
    notices = probe(model, settings := settings_for(llm))
    log_once(agent, model, notices)
    chat = Agent(
        model,
        output_type=outputs,
        instructions=spec.system_prompt or None,
        toolsets=[ExternalToolset(definitions)] if definitions else None,
        retries={"output": OUTPUT_RETRIES},
        model_settings=notices.kept(settings),
    )
    if check is not None:
        chat.output_validator(check)
    turn = request.turn
    streaming: AbstractAsyncContextManager[TokenPush] = (
        token_stream(agent, event_id=request.event.id, hold=True)
        if spec.stream
        else nullcontext(TokenPush())  # nothing pushed: unsent stays None
    )
    try:
        async with streaming as push:
            handler = _texts_to(push) if spec.stream else None  # None: a whole reply
            with quietly():  # what the provider warns of, the probe has said
                if turn is None:
                    prompt = _prompt(state)
                    if request.memory is not None:  # memory_enabled: what it recalled first
                        prompt = memory_prompt(request.memory, prompt)
                    result = await chat.run(prompt, event_stream_handler=handler)
                else:
                    result = await chat.run(
                        message_history=ModelMessagesTypeAdapter.validate_python(turn.messages),
                        deferred_tool_results=_results(turn.returns),
                        event_stream_handler=handler,
                    )
    except ApplicationError:
        raise
    except Exception as err:
        if (failure := as_failure(agent, llm, err)) is not None:
            raise failure from err
        raise
    used = result.usage
    usage = Usage(input_tokens=used.input_tokens, output_tokens=used.output_tokens,
                  requests=used.requests)  # fmt: skip
    if isinstance(result.output, DeferredToolRequests):
        calls = [
            tool_call(part.tool_name, part.tool_call_id, part.args_as_dict(), sources)
            for part in result.output.calls
        ]
        messages = ModelMessagesTypeAdapter.dump_python(result.all_messages(), mode="json")
        step = (turn.step if turn else 0) + 1
        turned = LLMTurn(messages=messages, calls=calls, step=step)
        return LLMReply(usage, turn=turned, tokens=push.unsent)
    return LLMReply(usage, update=_update(agent, result.output), tokens=push.unsent)


def resolved(request: AgentInput) -> ResolvedLLM:
    """The agent's model settings (runs from before per-agent settings carry only [llm])."""
    if request.model is not None:
        return request.model
    if request.llm is None or not request.llm.provider:
        raise config_error(request.agent, "has no handler and the flow has no [llm] provider")
    return merge_llm(request.llm.provider, {}, request.llm, None)


def _texts_to(push: Callable[[str], None]) -> EventStreamHandler[object]:
    """An event stream handler that pushes the text the model streams: a text part's first
    content, then its deltas."""

    async def handle(_: RunContext[object], events: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in events:
            text = ""
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                text = event.part.content
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                text = event.delta.content_delta
            if text:  # a part may open empty
                push(text)

    return handle


def _prompt(state: State) -> str:
    message = state.data.get("message")
    return message if isinstance(message, str) else json.dumps(state.data, default=str)


def _results(returns: list[ToolReturn]) -> DeferredToolResults:
    calls: dict[str, Any] = {
        done.id: ModelRetry(done.retry) if done.retry is not None else done.content
        for done in returns
    }
    return DeferredToolResults(calls=calls)


def _update(agent: str, output: Any) -> dict[str, Any]:
    if isinstance(output, pydantic.BaseModel):
        output = output.model_dump(mode="json")
    text = output if isinstance(output, str) else json.dumps(output)
    return {agent: output, "message": text}


def _output_type(
    agent: str, schema: dict[str, Any] | str | None, registry: AgentRegistry
) -> tuple[Any, Any]:
    """What the reply must be (text, a JSON Schema's data, a pydantic model) and, for a
    JSON Schema, the check that sends a reply that does not fit back to the model."""
    if schema is None:
        return str, None
    if isinstance(schema, str) and not schema.lstrip().startswith("{"):
        model = registry.get(schema)
        if model is None:
            raise config_error(
                agent,
                f"output_schema {schema!r} is not registered on this worker; start the worker "
                "with the agentflow.toml that names it (--config)",
            )
        return model, None
    parsed: dict[str, Any] = json.loads(schema) if isinstance(schema, str) else schema
    validator = jsonschema.Draft202012Validator(parsed)
    # The reply comes as a tool call, whose arguments are an object: a schema of another
    # type is asked for as {"result": ...}.
    wrapped = parsed.get("type") != "object"

    def check(data: Any) -> Any:
        value = data.get("result") if wrapped and isinstance(data, dict) else data
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            raise ModelRetry("; ".join(_schema_error(error) for error in errors[:5]))
        return value

    asked = (
        {"type": "object", "properties": {"result": parsed}, "required": ["result"]}
        if wrapped
        else parsed
    )
    return StructuredDict(asked, name="final_result"), check


def _schema_error(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(part) for part in error.path) or "(top level)"
    return f"{where}: {error.message}"
