"""asyncio plumbing: client connections, listeners, signals."""
