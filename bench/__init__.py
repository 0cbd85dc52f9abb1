"""Benchmarks: each module has a ``run() -> dict`` for a bench runner and a ``__main__`` that prints markdown."""
