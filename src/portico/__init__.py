"""Portico: a reverse proxy and app host for Python web apps."""

__version__ = "0.1.0"


def compiled() -> bool:
    """Whether the request path runs as mypyc-compiled C (setup.py) or as pure Python."""
    from portico.proxy import exchange

    return not exchange.__file__.endswith(".py")
