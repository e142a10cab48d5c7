"""Bambu Lab printers in LAN mode: MQTT over TLS for state and commands, implicit FTPS for files."""
