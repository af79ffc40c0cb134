"""Upstream side: connections to backends and the keep-alive pool."""
