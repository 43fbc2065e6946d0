"""What a model's provider says about a request before it is sent: a model it has deprecated,
a setting it will ignore. A user learns it as one line, never as an exception.

pydantic-ai reports both as Python warnings from ``Model.prepare_request``: a
``DeprecatedModelWarning`` naming the retirement date and the model the provider recommends,
an ``UnsupportedSettingWarning``, or (Anthropic's API from version 2026-10-21) a ``UserWarning``
that the sampling settings were dropped. Raised inside an activity they would fail the agent
wherever warnings are errors (as under pytest), and otherwise reach stderr without the agent's
name. So each (agent, model, settings) is probed once, synchronously, with the warnings caught:
``agentflow validate`` prints what the probe finds, and the worker logs it the first time an
agent meets it. The requests then leave out the settings the provider drops, and run under
pydantic-ai's own ``suppress_warnings`` so the same words are not raised a second time.

``warnings.catch_warnings`` is process-wide: a warning another thread raises during the probe
(which does no I/O and takes well under a millisecond) is shown again after it, not lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic_ai._unsupported_settings import suppress_warnings
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from temporalio.exceptions import ApplicationError

from agentflow.activities.llm_models import NO_KEY, build_model, settings_for
from agentflow.config import FlowConfig
from agentflow.config.llm import MissingVariable, expand_env
from agentflow.config.resolve import resolve_llm

log = logging.getLogger("agentflow.llm")


@dataclass(frozen=True)
class ProviderNotices:
    """The probe's findings: the provider's own words, and the settings it drops."""

    lines: tuple[str, ...] = ()
    dropped: frozenset[str] = frozenset()

    def kept(self, settings: ModelSettings) -> ModelSettings:
        """``settings`` less the ones the provider drops (they would only warn again)."""
        kept = {k: v for k, v in settings.items() if k not in self.dropped}
        return cast(ModelSettings, kept)


# (model id, settings) -> notices, and the (agent, line) pairs the worker has logged.
_probed: dict[tuple[str, tuple[tuple[str, Any], ...]], ProviderNotices] = {}
_logged: set[tuple[str, str]] = set()
MAX_PROBED = 256


def probe(model: Model, settings: Mapping[str, Any]) -> ProviderNotices:
    """Prepare a request for ``model`` without sending it, and keep what the provider says."""
    key = (f"{model.system}:{model.model_name}", tuple(sorted(settings.items(), key=str)))
    if (found := _probed.get(key)) is not None:
        return found
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared, _ = model.prepare_request(cast(ModelSettings, dict(settings)),
                                            ModelRequestParameters())  # fmt: skip
    lines: list[str] = []
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            lines.append(str(warning.message))
        else:  # not the provider's: shown as it would have been
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)  # fmt: skip
    dropped = frozenset(settings) - frozenset(prepared or {})
    if len(_probed) >= MAX_PROBED:
        _probed.clear()
    found = _probed[key] = ProviderNotices(tuple(lines), dropped)
    return found


def describe(agent: str, model: Model, notices: ProviderNotices) -> list[str]:
    """One line per notice, naming the agent and the model."""
    head = f"agent {agent!r}, model {model.model_name!r} ({model.system})"
    lines = [f"{head}: {line}" for line in notices.lines]
    if notices.dropped and not notices.lines:  # dropped without a word: say so all the same
        names = ", ".join(sorted(notices.dropped))
        lines.append(f"{head}: the provider does not take {names}; not sent")
    return lines


def log_once(agent: str, model: Model, notices: ProviderNotices) -> None:
    """Log each of ``notices`` at WARNING the first time this worker sees it for ``agent``."""
    for line in describe(agent, model, notices):
        if (agent, line) not in _logged:
            _logged.add((agent, line))
            log.warning("%s", line)


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Requests inside do not raise again what the probe already reported."""
    with suppress_warnings():
        yield


def flow_notices(config: FlowConfig) -> list[str]:
    """What the providers of ``config``'s LLM agents would say, known at load (for
    ``agentflow validate``). Settings from ``${VAR}`` templates the environment lacks are
    left out: a model named by one is skipped, a missing key needs no value to probe."""
    lines: list[str] = []
    for agent in config.enabled_agents():
        llm = resolve_llm(config, agent) if config.is_llm_agent(agent) else None
        if llm is None or llm.kind == "mock":
            continue
        try:
            name = expand_env(llm.model, os.environ)
            base_url = expand_env(llm.base_url, os.environ) if llm.base_url else None
        except MissingVariable:
            continue
        try:
            model = build_model(agent, llm, name, base_url or "http://127.0.0.1", NO_KEY)
        except ApplicationError:  # the worker reports it when the agent runs
            continue
        lines += describe(agent, model, probe(model, settings_for(llm)))
    return lines
