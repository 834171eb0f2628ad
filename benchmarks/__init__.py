"""Benchmarks for `make bench`: each module has `run() -> dict` with a `markdown` report."""
