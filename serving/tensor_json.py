"""TF Serving's REST tensor encoding, TF-free: JSON values <-> numpy arrays.

Row format (`instances`, answered as `predictions`) lists one entry per batch row: a dict of
named inputs, or a bare value when the signature has one input. Columnar format (`inputs`,
answered as `outputs`) gives each named input whole. Binary strings travel as
`{"b64": "<base64>"}`. See https://www.tensorflow.org/tfx/serving/api_rest.
"""

import base64
import math

import numpy as np

from serving.errors import ServingError

_KINDS = {"f": "float", "i": "int", "u": "int", "b": "bool"}
MAX_RANK = 16


def _decode_b64(value):
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise ServingError("INVALID_ARGUMENT",
                               f"Objects inside tensor values must be {{\"b64\": str}}; "
                               f"received keys {sorted(value)}.")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError as error:
            raise ServingError("INVALID_ARGUMENT", f"Invalid base64 value: {error}.") from None
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def nested_shape(value, name, max_rank=MAX_RANK):
    """The shape a nested JSON list declares, read along its first elements (raggedness is
    caught when numpy builds the array); refuses nesting deeper than `max_rank`."""
    shape = []
    while isinstance(value, list):
        if len(shape) >= max_rank:
            raise ServingError("INVALID_ARGUMENT",
                               f"Input `{name}` nests lists deeper than {max_rank} levels; "
                               f"tensors of rank <= {max_rank} are served.")
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def to_array(value, dtype, name, limits=None):
    """A JSON value -> numpy array of `dtype` (a numpy dtype, or `object` for strings);
    `limits` (serving.limits.ModelLimits) judges the declared shape before numpy builds it."""
    dtype = np.dtype(dtype)
    shape = nested_shape(value, name)
    if limits is not None:
        limits.check_shape(name, shape)
    if dtype.kind == "O":
        value = _decode_b64(value)
        value = _encode_strings(value)
        try:
            return np.array(value, dtype=object)
        except ValueError as error:
            raise ServingError("INVALID_ARGUMENT", f"Input `{name}`: {error}.") from None
    try:
        array = np.array(value)
    except ValueError:
        array = None
    if array is None or array.dtype == object or array.dtype.kind not in "fiub":
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Input `{name}` must be a (non-ragged) nested list of numbers for dtype "
            f"{dtype.name}; received {_describe(value)}.")
    if array.dtype.kind == "f" and dtype.kind in "iub":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Input `{name}` expects {dtype.name} values but received non-integral "
                f"numbers; send integers.")
    if array.dtype.kind == "b" and dtype.kind != "b":
        raise ServingError("INVALID_ARGUMENT",
                           f"Input `{name}` expects {dtype.name}; received booleans.")
    if dtype.kind in "iu" and array.size:
        _check_int_range(array, dtype, name)
    return array.astype(dtype)


def _check_int_range(array, dtype, name):
    info = np.iinfo(dtype)
    low, high = array.min(), array.max()
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Input `{name}` holds {int(bad)}, outside the {dtype.name} range "
            f"[{info.min}, {info.max}]; send values that fit (they would wrap).")


def _encode_strings(value):
    if isinstance(value, list):
        return [_encode_strings(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _describe(value):
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def from_array(array):
    """A numpy array -> a JSON-ready nested list (bytes as {"b64": ...} unless UTF-8 text)."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        return _strings_to_json(array.tolist())
    if array.dtype.kind == "f":
        return _floats(array.tolist())
    return array.tolist()


def _floats(value):
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _strings_to_json(value):
    if isinstance(value, list):
        return [_strings_to_json(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def parse_request(body, input_dtypes, limits=None):
    """A predict request body (dict) -> (feeds {name: array}, "row" | "columnar").

    `input_dtypes` maps the signature's input names to numpy dtypes; `limits`
    (serving.limits.ModelLimits) judges each tensor's size before it is built."""
    if not isinstance(body, dict):
        raise ServingError("INVALID_ARGUMENT", "The request body must be a JSON object.")
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise ServingError("INVALID_ARGUMENT",
                           "Request must have exactly one of \"instances\" (row format) or "
                           "\"inputs\" (columnar format).")
    names = sorted(input_dtypes)
    if has_rows:
        return _rows(body["instances"], input_dtypes, names, limits), "row"
    value = body["inputs"]
    if isinstance(value, dict) and not (set(value) == {"b64"}):
        named = value
    elif len(names) == 1:
        named = {names[0]: value}
    else:
        raise ServingError("INVALID_ARGUMENT",
                           f"\"inputs\" must be an object naming the signature's inputs "
                           f"{names}.")
    _check_names(named, names)
    return ({k: to_array(v, input_dtypes[k], k, limits) for k, v in named.items()},
            "columnar")


def _check_names(named, names):
    missing, extra = sorted(set(names) - set(named)), sorted(set(named) - set(names))
    if missing or extra:
        raise ServingError("INVALID_ARGUMENT",
                           f"Input names must equal the signature's {names}: missing "
                           f"{missing}, unexpected {extra}.")


def _rows(instances, input_dtypes, names, limits=None):
    if not isinstance(instances, list) or not instances:
        raise ServingError("INVALID_ARGUMENT", "\"instances\" must be a non-empty list.")
    named_rows = all(isinstance(r, dict) and set(r) != {"b64"} for r in instances)
    if not named_rows:
        if len(names) != 1:
            raise ServingError("INVALID_ARGUMENT",
                               f"Each instance must be an object naming the inputs {names}.")
        return {names[0]: to_array(instances, input_dtypes[names[0]], names[0], limits)}
    for row in instances:
        _check_names(row, names)
    return {k: to_array([row[k] for row in instances], input_dtypes[k], k, limits)
            for k in names}


def format_response(outputs, style):
    """Outputs {name: array} -> the response body for row or columnar requests."""
    names = sorted(outputs)
    if style == "columnar":
        if len(names) == 1:
            return {"outputs": from_array(outputs[names[0]])}
        return {"outputs": {k: from_array(outputs[k]) for k in names}}
    sizes = {k: (np.shape(outputs[k])[0] if np.ndim(outputs[k]) else None) for k in names}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ServingError("INVALID_ARGUMENT",
                           f"Row format needs every output batch-major with one batch size; "
                           f"the outputs have leading sizes {sizes}. Use \"inputs\" "
                           f"(columnar) instead.")
    columns = {k: from_array(outputs[k]) for k in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    batch = next(iter(sizes.values()))
    return {"predictions": [{k: columns[k][i] for k in names} for i in range(batch)]}
