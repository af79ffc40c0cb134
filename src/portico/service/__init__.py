"""Running portico as a system service: a systemd unit, or a Windows service."""
