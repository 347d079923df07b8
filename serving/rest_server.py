"""REST, as TF Serving documents it (https://www.tensorflow.org/tfx/serving/api_rest):

    GET  /v1/models/NAME[/versions/N | /labels/L]            model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signature defs (proto field names)
    POST /v1/models/NAME[/versions/N | /labels/L]:predict
        {"signature_name", "instances"|"inputs"}

Errors are `{"error": "..."}` with TF Serving's HTTP status for the canonical code. Requests
run on a bounded thread pool (`rest_connections`); bodies over `max_request_bytes` are
refused (413) unread; tensors over the model's limits (`serving.limits`) are refused (413)
before they are built.
"""

import http.server
import json
import logging
import re
import urllib.parse

from google.protobuf import json_format

from serving import grpc_service, tensor_json
from serving.errors import ServingError
from serving.rest_connections import (
    BoundedHTTPServer,  # noqa: F401 (re-exported)
    DeadlineReader,
)

LOG = logging.getLogger("keras_ar.serving")
VERSION = re.compile(r"^[0-9]{1,18}$")

_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
GET_PATH = re.compile(_MODEL + r"(?P<metadata>/metadata)?$")
POST_PATH = re.compile(_MODEL + r":(?P<verb>[A-Za-z]+)$")


def _to_dict(message):
    return json_format.MessageToDict(message, including_default_value_fields=True,
                                     preserving_proto_field_name=True)


class RestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "keras-ar-serving"
    rbufsize = 0  # unbuffered: a kept-alive connection returns to the selector, no bytes lost

    def setup(self):
        self.timeout = self.server.timeout_s  # each socket read waits at most this long
        super().setup()
        # ... and the whole request at most as long, from its first byte
        self.rfile.close()
        self.rfile = DeadlineReader(self.connection, self.server.timeout_s)

    def handle(self):
        """One request per pass: the server parks a kept-alive connection between them."""
        self.close_connection = True
        self.handle_one_request()

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
        if parts["version"] is not None and not VERSION.match(parts["version"]):
            raise ServingError("INVALID_ARGUMENT", f"Version must be a non-negative integer "
                                                   f"of ASCII digits 0-9 (at most 18); "
                                                   f"received {parts['version']!r}.")
        parts["version"] = int(parts["version"]) if parts["version"] is not None else None
        return parts

    # ----------------------------------------------------------------- GET
    def do_GET(self):
        self._guarded(self._get)

    def do_POST(self):
        self._guarded(self._post)

    def _guarded(self, action):
        """Answer every failure: no exception may drop the connection unanswered."""
        try:
            action()
        except MemoryError:
            self._error(ServingError("PAYLOAD_TOO_LARGE", "The request needs more memory than "
                                                          "the server has; send fewer rows or "
                                                          "positions."), close=True)
        except Exception as error:  # a bug must not take the connection (or server) down
            LOG.exception("REST %s %s failed", self.command, self.path)
            self._error(ServingError("INTERNAL", f"{type(error).__name__}: {error}"),
                        close=True)

    def _get(self):
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
    def _post(self):
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
            request = _parse_json(body)
            if not isinstance(request, dict):
                raise ServingError("INVALID_ARGUMENT", "The request body must be a JSON object.")
            signature = request.get("signature_name", "")
            if not isinstance(signature, str):
                raise ServingError("INVALID_ARGUMENT", "\"signature_name\" must be a string.")
            name = servable.signature(signature)
            dtypes = {k: v.dtype for k, v in servable.inputs[name].items()}
            feeds, style = tensor_json.parse_request(request, dtypes, servable.limits)
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
        return self._read_exactly(int(length))

    def _read_exactly(self, length):
        chunks, left = [], length
        while left > 0:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                raise ServingError("INVALID_ARGUMENT", f"The body ended after "
                                                       f"{length - left} of the {length} bytes "
                                                       f"Content-Length announced.")
            chunks.append(data)
            left -= len(data)
        return b"".join(chunks)

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


def _parse_json(body):
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
    except RecursionError:
        raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: the body nests arrays or "
                                               f"objects too deeply; tensors of rank <= "
                                               f"{tensor_json.MAX_RANK} are served.") from None
