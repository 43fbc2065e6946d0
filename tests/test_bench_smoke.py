"""The benchmark harness on tiny sizes, so it cannot rot. Figures are not checked, only that
every system completes every workload and the report holds them."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.__main__ import QUICK, run_suite
from bench.report import SYSTEMS, Report, write_results
from tests._postgres import pgvector_bindirs


async def test_bench_runs_every_workload_on_every_system(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    report = await run_suite(env, QUICK, only=set())
    systems = {system for row in report.rows for system in row.samples}
    # The one-process runner (agents registered in code) runs W1 and W6 beside the others.
    assert systems == {*SYSTEMS, "runner", "runner-local"}
    steps = next(
        r for r in report.rows if (r.workload, r.metric) == ("W1 latency, noop", "step_mean_ms")
    )
    # Measured from the agents' own calls: 4 steps per run of 5, for every system.
    assert set(steps.samples) == {*SYSTEMS, "runner", "runner-local"}
    runner_rows = {row.workload.split()[0] for row in report.rows if "runner" in row.samples}
    assert runner_rows == {"W1", "W6"} and "runner-local ÷ agentflow-local" in report.runner_table()
    workloads = {row.workload.split()[0] for row in report.rows}
    assert workloads == {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W7F", "W7B", "W8", "W9", "W10",
                         "W11", "W14", "W15", "W16"}  # fmt: skip
    # W15: agentflow and pydantic-ai's Temporal integration record the same 3 activities per
    # run (2 model requests, 1 tool call); its event-stream handler adds 2 more.
    w15 = {r.metric: r.samples["agentflow"] for r in report.rows if r.workload.startswith("W15")}
    assert w15["agentflow_activities"] == w15["pai_activities"] == [3.0]
    assert w15["pai_stream_activities"] == [5.0]
    # W10 (agent memory): each store searched and loaded; memory adds one activity to a run
    # (recall) and two to a session's event (recall, remember). pgvector where there is one.
    w10 = {(r.workload, r.metric): r.samples["agentflow"] for r in report.rows
           if r.workload.startswith("W10")}  # fmt: skip
    stores = ["sqlite-vec", *(["pgvector"] if pgvector_bindirs() else [])]
    for store in stores:
        assert ("W10 memory, " + store, "search_1k_p95_ms") in w10
        assert w10["W10 memory per agent call", f"run_{store}_extra_activities"] == [1.0]
        assert w10["W10 memory per agent call", f"session_{store}_extra_activities"] == [2.0]
    # W7 (the bus against direct starts) runs on agentflow only; no agent ran twice for an event.
    w7 = [row for row in report.rows if row.workload.startswith("W7")]
    assert {row.metric for row in w7} >= {"cost_ratio", "bus_p95_ms", "all_delivered_median_ms"}
    assert all(set(row.samples) == {"agentflow"} for row in w7)
    # W7F (filtered subscriptions against plain ones) and W7B (a batched subscriber against an
    # unbatched one) repeat the check: 4 rows in all.
    repeated = [row.samples["agentflow"] for row in w7 if row.metric == "repeated_calls"]
    assert repeated == [[0.0]] * 4
    assert any("agent 'a0'" in note and "MB" in note for note in report.notes)
    results = tmp_path / "RESULTS.md"
    results.write_text("# kept\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nkept too\n")
    write_results(report, ["machine"], results)
    text = results.read_text()
    assert "old" not in text and "kept too" in text and "| W1 latency, noop |" in text
    assert "| (b) session steps/s (W6) ÷ W2 steps/s (no-op) | ≥ 2 |" in text  # W6's targets


def test_report_ratios() -> None:
    report = Report()
    for value in (10.0, 12.0, 11.0):
        report.add("W1", "raw", {"ms": value})
    report.add("W1", "agentflow", {"ms": 22.0})
    assert report.rows[0].cell("raw") == "11 [10 to 12]"
    assert report.rows[0].ratio("agentflow", "raw") == "2.00"
