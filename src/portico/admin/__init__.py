"""Talking to a running portico: the local control socket."""
