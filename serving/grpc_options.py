"""gRPC channel arguments shared by the server and `TFServingBackend`.

`grpc.http2.lookahead_bytes` starts each stream with a 4 MiB HTTP/2 flow-control window
instead of 64 KiB: a step's state (262 kB each way for the 10-layer x 64-channel WaveNet)
then goes out without waiting for WINDOW_UPDATE round trips while gRPC's bandwidth-delay
probing has not yet grown the window (it does after some calls; after that the figures are
the same). Larger HTTP/2 frames and TCP read chunks were measured too and gained nothing
on loopback (docs/benchmarks.md, serving section).
"""

CHANNEL_OPTIONS = (("grpc.http2.lookahead_bytes", 4 << 20),)
