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
    rows += bad_input_checks(data.get("bad_input"))
    if suite := data.get("hostile"):
        rows.append(("hostile-input suite under the load (" + ", ".join(suite["files"]) + ")",
                     "passes", f"{suite['summary']} (exit {suite['exit_code']}, "
                     f"{suite['seconds']:g} s)", suite["passed"]))  # fmt: skip
    for name, rss in data["rss"].items():
        rows.append((f"worker {name} RSS start → end (max); pids {len(rss['pids'])}", "-",
                     f"{rss['start'] / MB:.0f} → {rss['end'] / MB:.0f} MB "
                     f"({rss['max'] / MB:.0f})", True))  # fmt: skip
    return rows


def bad_input_checks(bad: dict[str, Any] | None) -> list[tuple[str, str, str, bool]]:
    """A row per kind of bad input (every one refused or dead-lettered), and one per latency
    of the good traffic: with bad input no slower than without, beyond the noise."""
    rows = []
    for kind, row in (bad or {}).get("kinds", {}).items():
        if not row["sent"]:
            continue
        rows.append((f"bad input {kind}: refused or dead-lettered", f"{row['sent']} sent, 0 "
                     "unaccounted", f"refused {sum(row['refused'].values())}, dead-lettered "
                     f"{sum(row['dead_lettered'].values())}, held {row['held']}, unaccounted "
                     f"{row['unaccounted']}", row["unaccounted"] == 0))  # fmt: skip
    for what, lat in (bad or {}).get("latency", {}).items():
        with_bad, without = lat["with_bad"], lat["without"]
        if not (with_bad["n"] and without["n"]):
            continue
        allowed = max(lat["noise_p50_ms"], 0.25 * without["p50_ms"], 5.0)
        slower = with_bad["p50_ms"] - without["p50_ms"]
        rows.append((f"good {what} latency p50 / p95, with bad input vs without",
                     f"p50 at most {allowed:.0f} ms slower (the noise)",
                     f"{with_bad['p50_ms']:g} / {with_bad['p95_ms']:g} ms (n {with_bad['n']}) vs "
                     f"{without['p50_ms']:g} / {without['p95_ms']:g} ms (n {without['n']}); "
                     f"noise p50 {lat['noise_p50_ms']:g} ms",
                     slower <= allowed))  # fmt: skip
    return rows


def bad_input_table(bad: dict[str, Any] | None) -> list[str]:
    """What became of each kind of bad input, with the messages and reasons seen."""
    kinds = (bad or {}).get("kinds", {})
    if not any(row["sent"] for row in kinds.values()):
        return []
    lines = ["", "Bad input:", "",
             "| kind | sent | refused (message seen) | dead-lettered (reason) | held | "
             "unaccounted |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip

    def seen(counts: dict[str, int]) -> str:
        return "; ".join(f"{n}x {text}".replace("|", "/") for text, n in counts.items()) or "0"

    for kind, row in kinds.items():
        lines.append(f"| {kind} | {row['sent']} | {seen(row['refused'])} | "
                     f"{seen(row['dead_lettered'])} | {row['held']} | {row['unaccounted']}"
                     f"{' (' + seen(row['other']) + ')' if row['other'] else ''} |")  # fmt: skip
    return lines


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
    lines += bad_input_table(data.get("bad_input"))
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
