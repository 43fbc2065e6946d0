"""The generated reference pages: docs/reference/cli.md from the ``agentflow`` parser, and
docs/reference/config.md from the config schema (agentflow/config/reference.py).

``python -m agentflow.cli.reference`` (``make docs``) rewrites both pages; ``--check`` only
says which differ (exit 1). tests/test_docs.py fails when a committed page is not what the code
generates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from agentflow.cli._common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from agentflow.cli.main import build_parser
from agentflow.config.reference import config_reference

REFERENCE_DIR = Path("docs/reference")
REGENERATE = "python -m agentflow.cli.reference"
# Usage lines wrap at this width whatever the terminal that generates the page.
USAGE_WIDTH = 96


def cli_reference() -> str:
    """The Markdown of docs/reference/cli.md."""
    parser = build_parser()
    commands = list(_commands(parser, ()))
    lines = [
        "# CLI reference",
        "",
        f"<!-- Generated from agentflow/cli by `{REGENERATE}`; do not edit by hand. -->",
        "",
        f"{_sentence(parser.description)} Every command prints errors as one line on stderr",
        "(`agentflow: error: ...`), never a traceback, and exits with:",
        "",
        "| code | meaning |",
        "| --- | --- |",
        f"| {EXIT_OK} | success (a run that completed, or was handled by an error handler) |",
        f"| {EXIT_FAILED} | the run, event or command failed, or Temporal could not be reached |",
        f"| {EXIT_BAD_INPUT} | bad input: a config file, a flag, `--input` JSON, an unknown name |",
        "",
        "Commands:",
        "",
    ]
    lines += [f"- [`{name}`](#{_anchor(name)}): {help_}" for name, help_, _ in commands]
    for name, help_, sub in commands:
        lines += ["", f"## {name}", "", _sentence(help_), "", "```text", _usage(sub), "```"]
        lines += _arguments(sub)
    return "\n".join(lines) + "\n"


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Every command and subcommand, in the order the parser registers them."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            full = (*path, name)
            yield " ".join(("agentflow", *full)), helps.get(name, ""), sub
            yield from _commands(sub, full)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        rows.append(f"| {_flag(action)} | {_default(action)} | {_cell(action.help or '')} |")
    if not rows:
        return []
    return ["", "| argument | default | what it does |", "| --- | --- | --- |", *rows]


def _flag(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        optional = action.nargs in ("?", "*")
        return f"`{name}`" + (" (optional)" if optional else "")
    metavar = ""
    if action.nargs != 0:
        if action.choices is not None:
            metavar = " " + "\\|".join(str(choice) for choice in action.choices)
        else:
            metavar = " " + str(action.metavar or action.dest.upper())
    flags = ", ".join(f"`{flag}{metavar}`" for flag in action.option_strings)
    if isinstance(action, argparse._AppendAction):
        flags += " (repeatable)"
    return flags


def _default(action: argparse.Action) -> str:
    default = action.default
    if action.nargs == 0 or default is None or default == argparse.SUPPRESS:
        return ""
    return f"`{default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sentence(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading (lower case, spaces to dashes, punctuation dropped)."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def pages() -> dict[Path, str]:
    """Every generated page (relative to the repository root) -> its text."""
    return {
        REFERENCE_DIR / "cli.md": cli_reference(),
        REFERENCE_DIR / "config.md": config_reference(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=REGENERATE, description="Regenerate docs/reference/cli.md and config.md."
    )
    parser.add_argument("--root", default=".", help="the repository root (default: here)")
    parser.add_argument("--check", action="store_true", help="only report pages that differ")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "pyproject.toml").is_file():
        print(f"{REGENERATE}: error: {root.resolve()} is not the repository root "
              "(no pyproject.toml); run it there or pass --root", file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    stale = []
    for relative, text in pages().items():
        path = root / relative
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(str(relative))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "differs from the code" if args.check else "written"
    for name in stale:
        print(f"{name}: {verb}")
    return EXIT_FAILED if args.check and stale else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
