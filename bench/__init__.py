"""Benchmarks: agentflow against a hand-written raw Temporal workflow and plain asyncio.

Run with ``make bench`` (``BENCH_QUICK=1`` for a smoke run); results go to bench/RESULTS.md.
"""
