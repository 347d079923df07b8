"""gRPC: `tensorflow.serving.PredictionService` (Predict, GetModelMetadata) and
`tensorflow.serving.ModelService` (GetModelStatus) on the official tensorflow-serving-api
stubs. Classify, Regress, MultiInference and HandleReloadConfigRequest answer UNIMPLEMENTED
(the generated base classes do)."""

import logging

from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import tensor_proto
from serving.errors import ServingError

SIGNATURE_DEF = "signature_def"
LOG = logging.getLogger("keras_ar.serving")


def _lookup(manager, spec):
    version = spec.version.value if spec.HasField("version") else None
    label = spec.version_label or None
    return manager.get(spec.name, version=version, label=label)


def _abort(context, error):
    context.abort(error.grpc_code(), error.message)


def metadata_response(servable, signature_name=""):
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(value)
    response.metadata[SIGNATURE_DEF].Pack(signature_map)
    return response


def status_response(manager, name, version=None):
    """GetModelStatusResponse: every loaded, loading or failed version (a failed one: state
    END with its load error in `status`), as TF Serving reports them."""
    states = manager.version_states(name)
    if version is not None:
        if version not in states:
            raise ServingError("NOT_FOUND", f"Could not find version {version} of model "
                                            f"{name!r}; known versions: {sorted(states)}.")
        states = {version: states[version]}
    if not states:
        raise ServingError("NOT_FOUND", f"Model {name!r} has no loaded version.")
    response = get_model_status_pb2.GetModelStatusResponse()
    for v in sorted(states, reverse=True):
        state, code, message = states[v]
        status = response.model_version_status.add()
        status.version = v
        status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
        status.status.error_code = (0 if code == "OK"  # tensorflow.error.Code = gRPC's codes
                                    else ServingError(code, message).grpc_code().value[0])
        status.status.error_message = message
    return response


def decode_input(key, proto, limits):
    """A request TensorProto -> numpy array, after its declared shape passed the size limits
    and its values fill that shape exactly (nothing is allocated before)."""
    limits.check_shape(key, tensor_proto.declared_shape(proto))
    error = tensor_proto.value_count_error(proto)
    if error is None:
        try:
            return tensor_proto.to_ndarray(proto)
        except Exception as failure:  # malformed TensorProto from the client
            error = str(failure)
    raise ServingError("INVALID_ARGUMENT", f"Input `{key}` is not a valid TensorProto: "
                                           f"{error}")


def _check_deadline(context):
    """Refuse work whose client deadline has already passed (nobody reads the answer)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise ServingError("DEADLINE_EXCEEDED", "The request's deadline passed before it "
                                                "could run; allow a longer deadline.")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def Predict(self, request, context):
        try:
            servable = _lookup(self.manager, request.model_spec)
            feeds = {key: decode_input(key, proto, servable.limits)
                     for key, proto in request.inputs.items()}
            _check_deadline(context)
            outputs, signature = servable.predict(
                request.model_spec.signature_name, feeds, list(request.output_filter),
                timeout_s=context.time_remaining())
        except ServingError as error:
            return _abort(context, error)
        except MemoryError:
            return _abort(context, ServingError(
                "PAYLOAD_TOO_LARGE", "The request needs more memory than the server has; "
                                     "send fewer rows or positions."))
        except Exception as error:  # a bug answers INTERNAL; the server keeps serving
            LOG.exception("Predict on %s failed", request.model_spec.name)
            return _abort(context, ServingError("INTERNAL", f"{type(error).__name__}: {error}"))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature
        for key, value in outputs.items():
            tensor_proto.fill_tensor_proto(response.outputs[key], value)
        return response

    def GetModelMetadata(self, request, context):
        try:
            fields = list(request.metadata_field)
            if not fields:
                raise ServingError("INVALID_ARGUMENT",
                                   "GetModelMetadataRequest must specify at least one "
                                   "metadata_field (\"signature_def\").")
            unsupported = [f for f in fields if f != SIGNATURE_DEF]
            if unsupported:
                raise ServingError("INVALID_ARGUMENT",
                                   f"Metadata field {unsupported[0]} is not supported; use "
                                   f"\"signature_def\".")
            servable = _lookup(self.manager, request.model_spec)
            return metadata_response(servable, request.model_spec.signature_name)
        except ServingError as error:
            return _abort(context, error)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        spec = request.model_spec
        try:
            version = spec.version.value if spec.HasField("version") else None
            if spec.version_label:
                version = self.manager.get(spec.name, label=spec.version_label).version
            return status_response(self.manager, spec.name, version)
        except ServingError as error:
            return _abort(context, error)


def add_services(server, manager):
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
