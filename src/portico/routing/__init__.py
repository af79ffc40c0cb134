"""Routing and rewriting: pure functions and immutable tables, no I/O."""
