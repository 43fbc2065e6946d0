"""The Mermaid flowchart builder behind every graph (agentflow/graph.py, graph_run.py,
graph_session.py): node ids sanitised, every label quoted, subgraphs balanced.

Only plain ``flowchart`` syntax, so the output renders in GitHub markdown inside a
```mermaid block.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

START, DONE = "flow_start", "flow_done"
STYLES = [
    "classDef failed fill:#fde2e2,stroke:#c62828,color:#000",
    "classDef retried fill:#fff4d6,stroke:#b26a00,color:#000",
]


class Mermaid:
    """A small flowchart builder that keeps ids valid and labels quoted."""

    def __init__(self, direction: str = "LR") -> None:
        self.lines = [f"flowchart {direction}"]
        self._ids: dict[str, str] = {}

    def node_id(self, key: str) -> str:
        if key not in self._ids:
            base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", key)
            node, n = base, 1
            while node in self._ids.values():
                n += 1
                node = f"{base}_{n}"
            self._ids[key] = node
        return self._ids[key]

    def node(self, key: str, label: str, shape: str = "rect", css: str | None = None) -> str:
        node = self.node_id(key)
        opening, closing = {"rect": ("[", "]"), "stadium": ("([", "])"),
                            "hexagon": ("{{", "}}"), "rhombus": ("{", "}"),
                            "flag": (">", "]")}[shape]  # fmt: skip
        self.lines.append(f'    {node}{opening}"{quote(label)}"{closing}')
        if css:
            self.lines.append(f"    class {node} {css}")
        return node

    @contextmanager
    def subgraph(self, key: str, title: str, direction: str | None = None) -> Iterator[str]:
        """A titled box; what is drawn inside the ``with`` goes in it. Edges to ``key`` go to
        the whole box (how a nested flow or a session's event joins the rest)."""
        node = self.node_id(key)
        self.lines.append(f'    subgraph {node} ["{quote(title)}"]')
        if direction:
            self.lines.append(f"    direction {direction}")
        yield node
        self.lines.append("    end")

    def edge(self, src: str, dst: str, label: str = "", dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        text = f'|"{quote(label)}"|' if label else ""
        self.lines.append(f"    {self.node_id(src)} {arrow}{text} {self.node_id(dst)}")

    def chain(self, keys: Iterable[str]) -> None:
        for src, dst in itertools.pairwise(keys):
            self.edge(src, dst)

    def render(self) -> str:
        return "\n".join([*self.lines, *(f"    {style}" for style in STYLES)]) + "\n"


def quote(label: str) -> str:
    """Mermaid labels cannot hold a double quote or a line break; use its entity and <br/>."""
    return label.replace('"', "#quot;").replace("\n", "<br/>")
