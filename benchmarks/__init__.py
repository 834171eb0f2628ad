"""Benchmarks run by ``make bench`` (``python -m benchmarks``); results go to BENCHMARKS.md.

One module per benchmark, registered in ``REGISTRY`` by name. A benchmark module exposes
``run(quick: bool) -> str``: it measures, with its baseline in the same run, and returns the
Markdown body of its section in BENCHMARKS.md (what was run, and the numbers).
"""

REGISTRY: dict[str, str] = {
    "intake": "benchmarks.intake",
    "dispatch": "benchmarks.dispatch",
    "planning": "benchmarks.planning",
    "segments": "benchmarks.segments",
    "outcomes": "benchmarks.outcomes",
    "rewards": "benchmarks.rewards",
    "retention": "benchmarks.retention",
    "pages": "benchmarks.pages",
}
