"""Pure planners: settings + parsed entries -> Plan (no I/O, no environment reads)."""
