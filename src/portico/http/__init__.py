"""Sans-IO HTTP/1.1: bytes in, events out, bytes to write. Never imports asyncio."""
