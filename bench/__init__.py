"""Benchmarks (make bench). Never failing tests: they measure and print."""
