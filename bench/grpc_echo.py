"""The floor under any Python gRPC server: a bare echo of N bytes over loopback.

A generic unary method that returns its request bytes (no protobuf, no TensorFlow), served
by `grpc.server` with a thread pool in a subprocess, called from this process with the
same channel options as `TFServingBackend`. Its p50 round trip for the `sample_step`
request size is what gRPC alone costs per step, before any serving work. Run alone: `python -m
bench.grpc_echo`.
"""

import socket
import subprocess
import sys
import time

import numpy as np

OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def _serve(port):
    from concurrent import futures

    import grpc

    from serving.grpc_options import CHANNEL_OPTIONS

    handler = grpc.method_handlers_generic_handler(
        "echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, _: request)})
    server = grpc.server(futures.ThreadPoolExecutor(8), options=OPTIONS + list(CHANNEL_OPTIONS))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("READY", flush=True)
    server.wait_for_termination()


def echo_latencies(sizes, calls=300):
    """{size: p50 seconds} of `calls` echo round trips per payload size."""
    import grpc

    from serving.grpc_options import CHANNEL_OPTIONS

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "bench.grpc_echo", "serve", str(port)],
                               stdout=subprocess.PIPE, text=True)
    try:
        if process.stdout.readline().strip() != "READY":
            raise RuntimeError("the gRPC echo server did not start")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}",
                                        options=OPTIONS + list(CHANNEL_OPTIONS))
        echo = channel.unary_unary("/echo/Echo")
        result = {}
        for size in sizes:
            payload = bytes(size)
            for _ in range(20):
                echo(payload, timeout=30)
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                echo(payload, timeout=30)
                times.append(time.perf_counter() - start)
            result[size] = float(np.percentile(times, 50))
        channel.close()
        return result
    finally:
        process.kill()
        process.wait()


def rows(request_bytes, calls=300):
    out = []
    for size, p50 in echo_latencies((100, int(request_bytes)), calls).items():
        out.append({"benchmark": "serving",
                    "case": f"bare Python gRPC echo of {size:,} bytes (no protobuf, no TF)",
                    "metric": "p50 latency", "value": 1000 * p50, "unit": "ms"})
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(int(sys.argv[2]))
    else:
        for row in rows(262504):
            print(f"{row['case']}: {row['value']:.3f} {row['unit']}")
