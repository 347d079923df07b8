"""REST, as TF Serving documents it (https://www.tensorflow.org/tfx/serving/api_rest):

    GET  /v1/models/NAME[/versions/N | /labels/L]            model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signature defs (proto field names)
    POST /v1/models/NAME[/versions/N | /labels/L]:predict    {"signature_name", "instances"|"inputs"}

Errors are `{"error": "..."}` with TF Serving's HTTP status for the canonical code. Requests
run on a bounded thread pool; bodies over `max_request_bytes` are refused (413) unread.
"""

import concurrent.futures
import http.server
import json
import re
import urllib.parse

from google.protobuf import json_format

from serving import grpc_service, tensor_json
from serving.errors import ServingError

_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
GET_PATH = re.compile(_MODEL + r"(?P<metadata>/metadata)?$")
POST_PATH = re.compile(_MODEL + r":(?P<verb>[A-Za-z]+)$")


def _to_dict(message):
    return json_format.MessageToDict(message, including_default_value_fields=True,
                                     preserving_proto_field_name=True)


class BoundedHTTPServer(http.server.HTTPServer):
    """An HTTPServer whose connections are handled by a fixed-size thread pool.

    `request_queue_size` is the listen backlog: socketserver's default of 5 resets
    connections as soon as a few more clients than that connect at once."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, handler, manager, num_threads, max_request_bytes):
        super().__init__(address, handler)
        self.manager = manager
        self.max_request_bytes = int(max_request_bytes)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=num_threads, thread_name_prefix="rest")

    def process_request(self, request, client_address):
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self):
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class RestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "keras-ar-serving"
    timeout = 30

    def log_message(self, format, *args):  # quiet: errors reach the client as JSON
        pass

    # ----------------------------------------------------------------- plumbing
    def _send(self, status, body, close=False):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _error(self, error, close=False):
        self._send(error.http_status, {"error": error.message}, close=close)

    def _match(self, pattern):
        path = urllib.parse.urlsplit(self.path).path
        match = pattern.match(path)
        if not match:
            raise ServingError("NOT_FOUND", f"Malformed request: {self.command} {path}; see "
                                            f"https://www.tensorflow.org/tfx/serving/api_rest.")
        parts = {k: (urllib.parse.unquote(v) if v else v) for k, v in match.groupdict().items()}
        if parts["version"] is not None and not parts["version"].isdigit():
            raise ServingError("INVALID_ARGUMENT", f"Version must be a non-negative integer; "
                                                   f"received {parts['version']!r}.")
        parts["version"] = int(parts["version"]) if parts["version"] is not None else None
        return parts

    # ----------------------------------------------------------------- GET
    def do_GET(self):  # noqa: N802
        try:
            parts = self._match(GET_PATH)
            manager = self.server.manager
            if parts["metadata"]:
                servable = manager.get(parts["name"], parts["version"], parts["label"])
                response = grpc_service.metadata_response(servable)
                from tensorflow_serving.apis import get_model_metadata_pb2

                signature_map = get_model_metadata_pb2.SignatureDefMap()
                response.metadata["signature_def"].Unpack(signature_map)
                body = {"model_spec": _to_dict(response.model_spec),
                        "metadata": {"signature_def": _to_dict(signature_map)}}
            else:
                version = parts["version"]
                if parts["label"] is not None:
                    version = manager.get(parts["name"], label=parts["label"]).version
                body = _to_dict(grpc_service.status_response(manager, parts["name"], version))
            self._send(200, body)
        except ServingError as error:
            self._error(error)

    # ----------------------------------------------------------------- POST
    def do_POST(self):  # noqa: N802
        try:
            body = self._read_body()
        except ServingError as error:
            return self._error(error, close=True)
        try:
            parts = self._match(POST_PATH)
            if parts["verb"] != "predict":
                code = "UNIMPLEMENTED" if parts["verb"] in ("classify", "regress") else "NOT_FOUND"
                raise ServingError(code, f"Method :{parts['verb']} is not supported; this "
                                         f"server answers :predict.")
            servable = self.server.manager.get(parts["name"], parts["version"], parts["label"])
            try:
                request = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
            if not isinstance(request, dict):
                raise ServingError("INVALID_ARGUMENT", "The request body must be a JSON object.")
            signature = request.get("signature_name", "")
            if not isinstance(signature, str):
                raise ServingError("INVALID_ARGUMENT", "\"signature_name\" must be a string.")
            name = servable.signature(signature)
            dtypes = {k: v.dtype for k, v in servable.inputs[name].items()}
            feeds, style = tensor_json.parse_request(request, dtypes)
            outputs, _ = servable.predict(name, feeds)
            self._send(200, tensor_json.format_response(outputs, style))
        except ServingError as error:
            self._error(error)

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise ServingError("INVALID_ARGUMENT", "POST requests need a Content-Length header.")
        limit = self.server.max_request_bytes
        if int(length) > limit:
            self._discard(int(length), limit)
            raise ServingError("PAYLOAD_TOO_LARGE", f"Request body of {length} bytes exceeds "
                                                    f"the limit of {limit} bytes "
                                                    f"(--max_request_bytes).")
        return self.rfile.read(int(length))

    def _discard(self, length, limit, chunk=1 << 16):
        """Read and drop a refused body (bounded), so the client can read the 413 answer
        instead of hitting a reset; far larger bodies are cut off by closing."""
        if length > 4 * limit + (16 << 20):
            return
        while length > 0:
            data = self.rfile.read(min(chunk, length))
            if not data:
                return
            length -= len(data)
