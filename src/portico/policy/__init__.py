"""Header policy: who is trusted, what is forwarded, what is set or removed."""
