"""HTTPS at the proxy: certificates, SNI, reloading, and TLS to upstreams."""
