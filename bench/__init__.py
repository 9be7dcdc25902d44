"""Benchmarks: each case against a raw-transformers baseline in the same run, reported as ratios."""
