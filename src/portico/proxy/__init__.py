"""The proxy: one exchange per request, routed, rewritten, streamed."""
