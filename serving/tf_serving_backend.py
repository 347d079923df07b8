"""A TF Serving-compatible server (real tensorflow_model_server or `keras-ar serve`), over
REST (`http://HOST:PORT/v1/models/NAME[/versions/N]`, standard library only) or gRPC
(`grpc://HOST:PORT/NAME[/versions/N]`, official tensorflow-serving-api stubs).

The server sends signature metadata but not the manifest: pass `manifest` (a path or dict)
or a `start_id` so the Generator knows the start token.

A server that is down or restarting (gRPC UNAVAILABLE; REST connection refused or reset, or
503) is retried with exponential back-off for up to `retry_deadline_s` seconds (0: never);
any other error fails at once. Retrying is safe: every request carries the whole state.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np

from serving.backend import Backend
from serving.generation_spec import read_manifest

_DTYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32,
           "DT_INT64": np.int64, "DT_BOOL": np.bool_, "DT_UINT8": np.uint8,
           "DT_INT8": np.int8, "DT_HALF": np.float16, "DT_STRING": object}
RETRY_FIRST_WAIT_S, RETRY_MAX_WAIT_S = 0.05, 2.0
# clients reconnect to a restarted server within RETRY_MAX_WAIT_S (gRPC's default waits
# up to 120 s between reconnection attempts)
RECONNECT_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100),
                     ("grpc.min_reconnect_backoff_ms", 100),
                     ("grpc.max_reconnect_backoff_ms", int(RETRY_MAX_WAIT_S * 1000)))
_TARGET = re.compile(r"^/?(?:v1/models/)?(?P<name>[^/]+)(?:/versions/(?P<version>\d+))?/?$")


class TFServingBackend(Backend):
    name = "tfserving"

    def __init__(self, url: str, manifest: str | os.PathLike | dict[str, Any] | None = None,
                 timeout_s: float = 30.0, retry_deadline_s: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        match = _TARGET.match(parts.path)
        if parts.scheme not in ("http", "grpc") or not match:
            raise ValueError(f"TF Serving URL must be http://HOST:PORT/v1/models/NAME"
                             f"[/versions/N] or grpc://HOST:PORT/NAME[/versions/N]; "
                             f"received {url!r}.")
        self.protocol, self.netloc = parts.scheme, parts.netloc
        self.model = match["name"]
        self.version = int(match["version"]) if match["version"] else None
        self.timeout_s = float(timeout_s)
        if not retry_deadline_s >= 0:
            raise ValueError(f"retry_deadline_s must be >= 0 seconds (0: no retries); "
                             f"received {retry_deadline_s!r}.")
        self.retry_deadline_s = float(retry_deadline_s)
        if self.protocol == "grpc":
            self._init_grpc()
        self._signatures = self._fetch_signatures()
        if isinstance(manifest, dict) or manifest is None:
            self._manifest = manifest
        else:
            self._manifest = read_manifest(manifest)

    # ----------------------------------------------------------------- REST
    def _model_url(self):
        url = f"http://{self.netloc}/v1/models/{self.model}"
        return url + (f"/versions/{self.version}" if self.version is not None else "")

    def _http(self, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                         headers={"Content-Type": "application/json"})

        def call():
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                detail = error.read().decode(errors="replace")
                failure = RuntimeError(f"TF Serving REST {url} answered {error.code}: "
                                       f"{detail}")
                raise (_Retryable(failure) if error.code == 503 else failure) from None
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                failure = RuntimeError(f"TF Serving REST {url}: {type(reason).__name__}: "
                                       f"{reason}")
                if isinstance(reason, (ConnectionError, http.client.HTTPException)):
                    raise _Retryable(failure) from None
                raise failure from None

        return self._retrying(call)

    def _retrying(self, call):
        """`call()`, again after a `_Retryable` failure with exponential back-off, until
        `retry_deadline_s` seconds after the first failure."""
        deadline, wait = None, RETRY_FIRST_WAIT_S
        while True:
            try:
                return call()
            except _Retryable as retryable:
                now = time.monotonic()
                deadline = now + self.retry_deadline_s if deadline is None else deadline
                if now + wait > deadline:
                    raise RuntimeError(
                        f"{retryable.error} (still unreachable after retrying for "
                        f"{self.retry_deadline_s:g} s, the retry deadline; start the server "
                        f"at {self.netloc}, or allow longer: retry_deadline_s, keras-ar "
                        f"generate --retry-deadline SECONDS)") from None
                time.sleep(wait)
                wait = min(2 * wait, RETRY_MAX_WAIT_S)

    # ----------------------------------------------------------------- gRPC
    def _init_grpc(self):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        from serving.grpc_options import CHANNEL_OPTIONS

        self._channel = grpc.insecure_channel(
            self.netloc, options=[("grpc.max_receive_message_length", -1),
                                  ("grpc.max_send_message_length", -1), *CHANNEL_OPTIONS,
                                  *RECONNECT_OPTIONS])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def _spec(self, request_spec, signature=""):
        request_spec.name = self.model
        request_spec.signature_name = signature
        if self.version is not None:
            request_spec.version.value = self.version

    def _grpc(self, method, request):
        """`method(request)`; UNAVAILABLE (server down or restarting) is retried."""
        import grpc

        def call():
            try:
                return method(request, timeout=self.timeout_s)
            except grpc.RpcError as error:
                failure = RuntimeError(f"TF Serving gRPC {self.netloc} answered "
                                       f"{error.code().name}: {error.details()}")
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    raise _Retryable(failure) from None
                raise failure from None

        return self._retrying(call)

    # ----------------------------------------------------------------- protocol
    def _fetch_signatures(self):
        if self.protocol == "http":
            body = self._http(self._model_url() + "/metadata")
            defs = body["metadata"]["signature_def"]["signature_def"]
            return {name: {"inputs": _json_specs(d.get("inputs", {})),
                           "outputs": _json_specs(d.get("outputs", {}))}
                    for name, d in defs.items()}
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._grpc(self._stub.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {name: {"inputs": _proto_specs(d.inputs), "outputs": _proto_specs(d.outputs)}
                for name, d in signature_map.signature_def.items()}

    def _run(self, signature, feeds):
        outputs = self._signatures[signature]["outputs"]
        if self.protocol == "http":
            body = {"signature_name": signature,
                    "inputs": {k: v.tolist() for k, v in feeds.items()}}
            result = self._http(self._model_url() + ":predict", body)["outputs"]
            if not isinstance(result, dict):
                result = {next(iter(outputs)): result}
            return {k: np.asarray(v, dtype=outputs[k][1]) for k, v in result.items()}
        from tensorflow_serving.apis import predict_pb2

        from serving import tensor_proto

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature)
        inputs = request.inputs
        for key, value in feeds.items():
            tensor_proto.fill_tensor_proto(inputs[key], value)
        response = self._grpc(self._stub.Predict, request)
        # read-only views of the response's bytes: no copy
        return {k: tensor_proto.to_ndarray(v) for k, v in response.outputs.items()}

    def close(self) -> None:
        if self.protocol == "grpc":
            self._channel.close()


class _Retryable(Exception):
    """A failure worth retrying (the server is down or restarting); `error` says which."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _json_specs(infos):
    specs = {}
    for name, info in infos.items():
        shape = info.get("tensor_shape", {})
        dims = None if shape.get("unknown_rank") else tuple(
            None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in shape.get("dim", []))
        specs[name] = (dims, _DTYPES.get(info["dtype"], object))
    return specs


def _proto_specs(infos):
    from serving import tensor_proto

    specs = {}
    for name, info in infos.items():
        dims = None if info.tensor_shape.unknown_rank else tuple(
            None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
        specs[name] = (dims, tensor_proto.numpy_dtype(info.dtype))
    return specs
