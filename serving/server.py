"""`ModelServer`: TF Serving's REST and gRPC APIs over a model base path, on loopback by default.

    manager = ModelManager([ModelConfig("wavenet", "/models/wavenet")])
    server = ModelServer(manager, grpc_port=8500, rest_port=8501)
    server.start(); server.wait()
"""

import concurrent.futures
import logging
import threading

from serving.grpc_options import CHANNEL_OPTIONS
from serving.limits import DEFAULT_MAX_REQUEST_BYTES
from serving.model_manager import ModelManager  # noqa: F401 (re-exported for callers)
from serving.rest_connections import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT_S
from serving.rest_server import BoundedHTTPServer, RestHandler

LOG = logging.getLogger("keras_ar.serving")


class ModelServer:
    """gRPC on `grpc_port` and REST on `rest_port` (0 disables REST, as in TF Serving).

    `poll_wait_seconds`: seconds between file-system polls for new versions (0: none after
    the start); `config_file` re-read every `config_poll_wait_seconds` (0: never).
    REST: each socket read waits at most `rest_timeout_s`, idle connections are closed
    after it, and at most `rest_max_connections` are open (`rest_connections`)."""

    def __init__(self, manager, grpc_port=8500, rest_port=0, host="127.0.0.1",
                 poll_wait_seconds=1.0, grpc_threads=16, rest_threads=16,
                 max_request_bytes=DEFAULT_MAX_REQUEST_BYTES, config_file=None,
                 config_poll_wait_seconds=0.0, rest_timeout_s=DEFAULT_TIMEOUT_S,
                 rest_max_connections=DEFAULT_MAX_CONNECTIONS):
        self.manager, self.host = manager, host
        self.config_file = config_file
        self.config_poll_wait_seconds = float(config_poll_wait_seconds)
        self.grpc_port, self.rest_port = int(grpc_port), int(rest_port)
        self.poll_wait_seconds = float(poll_wait_seconds)
        self.grpc_threads, self.rest_threads = int(grpc_threads), int(rest_threads)
        self.max_request_bytes = int(max_request_bytes)
        self.rest_timeout_s, self.rest_max_connections = rest_timeout_s, rest_max_connections
        self._stop = threading.Event()
        self._grpc = self._http = None

    def start(self):
        """Load the initial versions, then open the ports and start polling."""
        import grpc

        from serving import grpc_service

        self.manager.poll()
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(self.grpc_threads,
                                                  thread_name_prefix="grpc"),
            maximum_concurrent_rpcs=self.grpc_threads * 8,
            options=[("grpc.max_receive_message_length", self.max_request_bytes),
                     ("grpc.max_send_message_length", -1),
                     ("grpc.so_reuseport", 0), *CHANNEL_OPTIONS])
        grpc_service.add_services(self._grpc, self.manager)
        bound = self._grpc.add_insecure_port(f"{self.host}:{self.grpc_port}")
        if not bound:
            raise OSError(f"Cannot bind gRPC to {self.host}:{self.grpc_port}.")
        self.grpc_port = bound
        self._grpc.start()
        if self.rest_port:
            self._http = BoundedHTTPServer((self.host, self.rest_port), RestHandler,
                                           self.manager, self.rest_threads,
                                           self.max_request_bytes, self.rest_timeout_s,
                                           self.rest_max_connections)
            self.rest_port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, name="rest",
                             daemon=True).start()
        if self.poll_wait_seconds > 0:
            self.manager.start_polling(self.poll_wait_seconds, self._stop)
        if self.config_file and self.config_poll_wait_seconds > 0:
            self.manager.start_config_polling(self.config_file,
                                              self.config_poll_wait_seconds, self._stop)
        LOG.info("Serving gRPC on %s:%d, REST on %s", self.host, self.grpc_port,
                 f"{self.host}:{self.rest_port}" if self.rest_port else "(off)")

    def stop(self, grace_s=1.0):
        """Close the ports (requests in flight get `grace_s`), then the batch scheduler,
        logging its counts (`BatchScheduler.log_stats`)."""
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace_s).wait()
        if self.manager.batcher is not None:
            self.manager.batcher.log_stats()
            self.manager.batcher.close()

    def wait(self):
        self._stop.wait()
