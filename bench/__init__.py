"""Ratio benchmarks for burnlink: ``.venv-test/bin/python -m bench`` (docs/operations.md).

Never timed assertions: the numbers are read by people, next to Snappass and a bare ASGI
ceiling measured in the same run on the same machine.
"""
