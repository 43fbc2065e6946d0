"""The soak's report: one table of checks (what was expected, what was seen, pass or not),
then the details, as markdown; the data as JSON beside it."""

from __future__ import annotations

from typing import Any

MB = 1024 * 1024


def checks(data: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(check, expected, observed, ok) rows."""
    sessions, subs = data["sessions"], data["subscribers"]
    rows = []
    sent = sum(row["sent"] for row in sessions)
    lost = sum(abs(row["unaccounted"]) for row in sessions)
    bad = [row["name"] for row in sessions if row["unaccounted"] or row["sent"] != row["emitted"]]
    rows.append((f"sessions: emitted = processed + dead-lettered + queued ({len(sessions)} "
                 "sessions)", f"{sent} events, 0 unaccounted",
                 f"{lost} unaccounted; sessions off: {', '.join(bad[:5]) or 'none'}",
                 not bad))  # fmt: skip
    for row in subs:
        rows.append((f"subscriber {row['name']}: deliveries accounted",
                     f"{row['sent']} publishes",
                     f"{row['emitted']} delivered: {row['processed']} processed, "
                     f"{row['dead_lettered']} dead-lettered, {row['queued']} queued",
                     row["unaccounted"] == 0 and row["sent"] == row["emitted"]))  # fmt: skip
    rows.append(("ordered subscriber: each key's events in publish order", "0 out of order",
                 str(len(data["out_of_order"])), not data["out_of_order"]))  # fmt: skip
    drivers = [error for error in data["errors"] if error.startswith("driver failed")]
    rows.append(("every driver sent all its load", "0 failed", str(len(drivers)), not drivers))
    runs = data["runs"]
    failed = {k: v for k, v in runs.items() if not k.endswith((":completed", ":processed"))}
    rejected = data["decisions"].get("rejected", 0)
    unexpected = sum(failed.values()) - rejected
    rows.append(
        (
            "runs of every mode, LLM runs, approvals: ended as expected",
            f"all completed, {rejected} rejected approvals failed",
            ", ".join(f"{k} {v}" for k, v in sorted(runs.items())),
            unexpected == 0,
        )
    )
    ledger = data["ledger"]
    rows.append(("agent and tool calls run twice, not at a fault", "0",
                 f"{len(ledger['repeated_unexplained'])} (at a fault: "
                 f"{len(ledger['repeated_at_fault'])}; calls {ledger['calls']})",
                 not ledger["repeated_unexplained"]))  # fmt: skip
    req = data["model_requests"]
    rows.append(
        (
            "model requests beyond the retry policy",
            "0",
            f"{len(data['requests_beyond_retries'])} (requests {req.get('requests', 0)}; "
            f"again at a fault {req.get('repeated_at_fault', 0)}; "
            f"429 {req.get('429', 0)}, 500 {req.get('500', 0)}, cut {req.get('cut', 0)}, "
            f"slow {req.get('slow', 0)})",
            not data["requests_beyond_retries"],
        )
    )
    rows.append((f"retried after a 429 no sooner than Retry-After "
                 f"({req.get('retry_after_seconds')} s)", "0 sooner",
                 f"{req.get('gaps_shorter_than_retry_after', 0)} sooner (shortest "
                 f"{req.get('min_gap_after_429_ms')} ms)",
                 not req.get("gaps_shorter_than_retry_after")))  # fmt: skip
    hist = data["histories"]
    rows.append(
        (
            "every history under 51,200 events and 50 MB",
            f"{hist['runs']} runs",
            f"longest {hist['max_events']} events, largest {hist['max_bytes'] / MB:.2f} "
            f"MB, over: {len(hist['over_limits'])}",
            not hist["over_limits"],
        )
    )
    for conv in data["conversations"]:
        turns = conv["per_turn"]
        first, last = (turns[0], turns[-1]) if turns else (0, 0)
        largest = max((run["bytes"] for run in conv["runs"]), default=0)
        rows.append((f"long conversation {conv['flow']}: bytes per turn, first → last; "
                     "runs; largest run", "bounded",
                     f"{first} → {last} B; {len(conv['runs'])} runs; {largest / MB:.2f} MB",
                     largest < 50 * MB))  # fmt: skip
    for name, rss in data["rss"].items():
        rows.append((f"worker {name} RSS start → end (max); pids {len(rss['pids'])}", "-",
                     f"{rss['start'] / MB:.0f} → {rss['end'] / MB:.0f} MB "
                     f"({rss['max'] / MB:.0f})", True))  # fmt: skip
    return rows


def markdown(data: dict[str, Any]) -> str:
    size = data["size"]
    lines = [
        f"Soak: {size['sessions']} sessions, {size['events']} events, {size['runs']} mode "
        f"runs, {size['publishes']} publishes, {size['approvals']} approvals, "
        f"{size['llm_runs']} LLM runs, {size['turns']} turns; {size['minutes']:g} min "
        "planned",
        "",
        "| check | expected | observed | ok |",
        "| --- | --- | --- | --- |",
    ]
    for check, expected, observed, ok in checks(data):
        lines.append(f"| {check} | {expected} | {observed} | {'yes' if ok else 'NO'} |")
    lines += ["", "Faults:", ""]
    lines += [
        f"- {fault['what']} (pid {fault['pid']}): whole again after "
        f"{fault['until'] - fault['at']:.1f} s"
        for fault in data["faults"]
    ]
    for title, items in (("Calls run again at a fault", data["ledger"]["repeated_at_fault"]),
                         ("Calls run again, unexplained", data["ledger"]["repeated_unexplained"]),
                         ("Model requests beyond retries", data["requests_beyond_retries"]),
                         ("Out of order", data["out_of_order"]),
                         ("Errors", data["errors"])):  # fmt: skip
        if items:
            lines += ["", f"{title}:", ""] + [f"- {item}" for item in items[:20]]
    return "\n".join(lines) + "\n"


def passed(data: dict[str, Any]) -> bool:
    return all(ok for *_, ok in checks(data))
