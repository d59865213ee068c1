"""relaykit: route a Postfix server's outbound mail through relay hosts, DMS-compatible."""

__version__ = "0.1.0"
