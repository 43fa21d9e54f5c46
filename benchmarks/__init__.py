"""Throughput benchmarks: each figure measured beside its anchor, in the same run, on the same machine.

``python -m benchmarks.run`` (``make bench``) regenerates BENCHMARKS.md and
benchmarks/results.json. These are not tests: nothing here asserts a speed.
"""
