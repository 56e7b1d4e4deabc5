"""`slob trace`: a transparent, decoding proxy for the TWS API socket, session recording
and replay (see docs/debugging-the-tws-protocol.md)."""
