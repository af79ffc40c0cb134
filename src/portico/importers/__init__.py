"""``portico import iis|apache``: a web.config or httpd.conf read into a portico config.

One parser per dialect (``iis.py``, ``apache.py``) reads its file into the plain
model of ``model.py``; ``emit.py`` turns that into TOML with tomlkit; ``samples.py``
replays ``--check`` lines through the result. Nothing is dropped silently: what has no
portico meaning is a ``Problem`` naming the file, the line and the directive.
"""
