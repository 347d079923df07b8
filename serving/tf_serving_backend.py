"""A TF Serving-compatible server (real tensorflow_model_server or `keras-ar serve`), over
REST (`http://HOST:PORT/v1/models/NAME[/versions/N]`, standard library only) or gRPC
(`grpc://HOST:PORT/NAME[/versions/N]`, official tensorflow-serving-api stubs).

The server sends signature metadata but not the manifest: pass `manifest` (a path or dict)
or a `start_id` so the Generator knows the start token.
"""

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from serving.backend import Backend
from serving.generation_spec import read_manifest

_DTYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32,
           "DT_INT64": np.int64, "DT_BOOL": np.bool_, "DT_UINT8": np.uint8,
           "DT_INT8": np.int8, "DT_HALF": np.float16, "DT_STRING": object}
_TARGET = re.compile(r"^/?(?:v1/models/)?(?P<name>[^/]+)(?:/versions/(?P<version>\d+))?/?$")


class TFServingBackend(Backend):
    name = "tfserving"

    def __init__(self, url, manifest=None, timeout_s=30.0):
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
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise RuntimeError(f"TF Serving REST {url} answered {error.code}: {detail}") from None

    # ----------------------------------------------------------------- gRPC
    def _init_grpc(self):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        from serving.grpc_options import CHANNEL_OPTIONS

        self._channel = grpc.insecure_channel(
            self.netloc, options=[("grpc.max_receive_message_length", -1),
                                  ("grpc.max_send_message_length", -1), *CHANNEL_OPTIONS])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def _spec(self, request_spec, signature=""):
        request_spec.name = self.model
        request_spec.signature_name = signature
        if self.version is not None:
            request_spec.version.value = self.version

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
        response = self._stub.GetModelMetadata(request, timeout=self.timeout_s)
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
        response = self._stub.Predict(request, timeout=self.timeout_s)
        # read-only views of the response's bytes: no copy
        return {k: tensor_proto.to_ndarray(v) for k, v in response.outputs.items()}

    def close(self):
        if self.protocol == "grpc":
            self._channel.close()


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
