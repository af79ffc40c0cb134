"""Portico: a reverse proxy and app host for Python web apps."""

__version__ = "0.1.0"
