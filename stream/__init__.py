"""The stream contract (protocol v1, docs/protocol.md): framing, headers, CURVE keys, the
Subscriber client and stylecast-sub with its outputs. Needs no engine, camera or torch."""
