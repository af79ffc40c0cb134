"""Upstream side: the backends (one per address), their availability, connections and pool."""
