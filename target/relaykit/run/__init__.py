"""Orchestration: configure/apply, the daemon (relaykit start), watching the config directory."""
