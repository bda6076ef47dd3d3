"""Tests of the Python SDK (burnlink.sdk) against real servers."""
