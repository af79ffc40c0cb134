"""The bundled example app served by ``portico run`` with no config."""
