"""The threaded raw-ibapi engine room: wire codec, client, bridge, conversion."""
