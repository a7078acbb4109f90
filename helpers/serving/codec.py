"""TF Serving's REST JSON ↔ NumPy tensors, with validation that names what is wrong.

Row format (``instances``): a list with one item per example; with several named inputs each
item is an object ``{input_name: value}``. Columnar format (``inputs``): one value, or an object
``{input_name: tensor}``. Binary values are ``{"b64": "..."}``. The response mirrors the request:
``predictions`` (rows) or ``outputs`` (columns), without names when there is a single output.

Error messages follow TF Serving's ``util/json_tensor.cc`` (the wording of a bad value's type,
of missing keys, of an empty ``instances`` list). Deliberate differences: float inputs holding
NaN or ±Infinity are refused with 400 (TF Serving accepts them, as its JSON allows the tokens);
for this course's models such a value is always a client bug, and a model fed NaN returns NaN
silently. An empty batch is refused (TF Serving runs the model on zero rows), and a shape that
does not match the signature is refused before the model runs, with a message naming both
shapes (TF Serving passes the tensor to the model, whose error it returns).
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

from helpers.serving.errors import InvalidArgument
from helpers.serving.models import Signature, TensorSpec


def parse_json(body: bytes) -> dict:
    """Parse a request body; anything but a JSON object is a 400 with TF Serving's wording
    (``ParseJson`` in ``util/json_tensor.cc``). ``NaN`` and ``Infinity`` tokens parse, as there."""
    if not body:
        raise InvalidArgument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidArgument(f"JSON Parse error: {error}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"JSON Value: {_excerpt(document)} Is not object")
    return document


def _excerpt(value, limit: int = 80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def signature_name(document: dict) -> str | None:
    """The request's ``signature_name`` (``None``: the default); it must be a string."""
    name = document.get("signature_name")
    if name is not None and not isinstance(name, str):
        raise InvalidArgument(f"JSON Value: {_excerpt(name)} not formatted correctly. 'signature_name' key "
                              f"must be a string value.")
    return name


def _decode_b64(value):
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise InvalidArgument('Binary values must be written {"b64": "<base64 string>"}')
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error as error:
            raise InvalidArgument(f"Invalid base64 value: {error}") from None
    if isinstance(value, list):
        return [_decode_b64(item) for item in value]
    return value


def _shape_text(shape) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def validate_tensor(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Check one input tensor against its signature spec; the one validation path of REST and gRPC.

    Refuses (``InvalidArgument``, messages naming the input) an empty batch, a shape that does
    not match (``None`` in ``spec.shape`` matches any size), a dtype other than the signature's
    (REST converts first, see :func:`to_tensor`; gRPC sends typed TensorProtos) and float
    values that are NaN or infinite. Returns ``array`` unchanged.
    """
    if spec.shape and array.ndim >= 1 and array.shape[0] == 0:
        raise InvalidArgument(f"Input '{spec.name}' is empty: send at least one example")
    if spec.shape and (array.ndim != len(spec.shape) or any(
            want is not None and want != got for want, got in zip(spec.shape, array.shape))):
        raise InvalidArgument(f"Input '{spec.name}' has shape {list(array.shape)}; the signature "
                              f"expects {_shape_text(spec.shape)} (-1: any size)")
    text_wanted, text_given = spec.dtype.kind in "SUO", array.dtype.kind in "SUO"
    if text_wanted != text_given or (not text_wanted and array.dtype != spec.dtype):
        raise InvalidArgument(f"Input '{spec.name}' has dtype {array.dtype.name}; the signature "
                              f"expects {spec.dtype.name}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise InvalidArgument(f"Input '{spec.name}' contains NaN or Infinity")
    return array


_TF_NAMES = {"float32": "float", "float64": "double", "object": "string", "bool": "bool"}


def _type_error(value, spec: TensorSpec) -> InvalidArgument:
    return InvalidArgument(f"JSON Value: {_excerpt(value)} is not of expected type: "
                           f"{_TF_NAMES.get(spec.dtype.name, spec.dtype.name)} (input '{spec.name}')")


def to_tensor(value, spec: TensorSpec) -> np.ndarray:
    """Convert one JSON value to ``spec``'s dtype, then check it with :func:`validate_tensor`.

    As in TF Serving (``AddValueToTensor`` in ``util/json_tensor.cc``), a value of the wrong
    JSON type is refused, not coerced: strings, booleans or floats where integers are expected,
    integers outside the dtype's range.
    """
    if spec.dtype.kind in "SUO":
        return validate_tensor(np.asarray(_decode_b64(value), dtype=object), spec)
    try:
        array = np.asarray(value)
    except ValueError:
        raise InvalidArgument(f"Input '{spec.name}': the lists are ragged (every example must have "
                              f"the same shape)") from None
    given, wanted = array.dtype.kind, spec.dtype.kind
    if given in "USO" or (given == "b") != (wanted == "b") or (given == "f" and wanted in "iu"):
        raise _type_error(value if array.size else [], spec)
    if wanted in "iu" and array.size:
        limits = np.iinfo(spec.dtype)
        if array.min() < limits.min or array.max() > limits.max:
            raise _type_error(int(array.max() if array.max() > limits.max else array.min()), spec)
    if array.size == 0 and array.ndim == 1 and spec.shape:
        array = array.reshape(0, *(d or 0 for d in spec.shape[1:]))   # [] is an empty batch
    return validate_tensor(array.astype(spec.dtype, copy=False), spec)


def inputs_from_protos(protos, signature: Signature) -> dict[str, np.ndarray]:
    """The input tensors of a gRPC ``PredictRequest`` (or a warm-up record), checked against the
    signature with TF Serving's message for a wrong set of names (``predict_util.cc``)."""
    import tensorflow as tf

    sent, wanted = set(protos), set(signature.inputs)
    if sent != wanted:
        def names(keys):
            return "{" + ",".join(sorted(keys)) + "}"

        raise InvalidArgument(
            f"input size does not match signature: {len(sent)}!={len(wanted)} len({names(sent)}) != "
            f"len({names(wanted)}). Sent extra: {names(sent - wanted)}. Missing but required: "
            f"{names(wanted - sent)}.")
    inputs = {}
    for name, proto in protos.items():
        try:
            array = tf.make_ndarray(proto)
        except Exception as error:  # noqa: BLE001
            raise InvalidArgument(f"Input '{name}': unreadable TensorProto: {error}") from None
        inputs[name] = validate_tensor(array, signature.inputs[name])
    return inputs


def request_inputs(document: dict, signature: Signature) -> tuple[dict[str, np.ndarray], str]:
    """The signature's input tensors from a predict request, and its format (row/columnar).

    The errors are TF Serving's (``FillPredictRequestFromJson`` in ``util/json_tensor.cc``).
    """
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows and has_columns:
        raise InvalidArgument("Not formatted correctly expecting only one of 'inputs' or 'instances' "
                              "keys to exist")
    if not (has_rows or has_columns):
        raise InvalidArgument("Missing 'inputs' or 'instances' key")
    names = list(signature.inputs)
    if has_rows:
        rows = document["instances"]
        if not isinstance(rows, list):
            raise InvalidArgument("Expecting 'instances' to be an list/array")
        if not rows:
            raise InvalidArgument("No values in 'instances' array")
        objects = [isinstance(row, dict) and "b64" not in row for row in rows]
        if not objects[0] and len(names) > 1:
            raise InvalidArgument("instances is a plain list, but expecting list of objects as multiple "
                                  "input tensors required as per tensorinfo_map")
        if any(kind != objects[0] for kind in objects):
            item = objects.index(not objects[0])
            got = "object but got list" if objects[0] else "value/list but got object"
            raise InvalidArgument(f"Expecting {got} at item {item} of input list")
        if objects[0]:
            for i, row in enumerate(rows):
                if set(row) != set(names):
                    raise InvalidArgument(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                          f"{_excerpt(row)} keys must be equal to: {','.join(sorted(names))}")
            columns = {n: [row[n] for row in rows] for n in names}
        else:
            columns = {names[0]: rows}
        return {n: to_tensor(columns[n], signature.inputs[n]) for n in names}, "row"
    value = document["inputs"]
    if isinstance(value, dict) and "b64" not in value:
        for n in names:
            if n not in value:
                raise InvalidArgument(f"Missing named input: {n} in 'inputs' object.")
        return {n: to_tensor(value[n], signature.inputs[n]) for n in names}, "columnar"
    if len(names) != 1:
        raise InvalidArgument("inputs is a plain value/list, but expecting an object as multiple input "
                              "tensors required as per tensorinfo_map")
    return {names[0]: to_tensor(value, signature.inputs[names[0]])}, "columnar"


def _jsonable(array: np.ndarray, name: str):
    if array.dtype.kind in "SO":
        encode = (lambda b: {"b64": base64.b64encode(b).decode()}) if name.endswith("_bytes") else (
            lambda b: b.decode(errors="replace") if isinstance(b, bytes) else b)
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else []
    return array.tolist()


def response_body(outputs: dict[str, np.ndarray], request_format: str) -> dict:
    """``{"predictions": ...}`` (row requests) or ``{"outputs": ...}`` (columnar requests)."""
    if request_format == "row":
        if len(outputs) == 1:
            (name, array), = outputs.items()
            return {"predictions": _jsonable(array, name)}
        rows = len(next(iter(outputs.values())))
        columns = {name: _jsonable(array, name) for name, array in outputs.items()}
        return {"predictions": [{name: columns[name][i] for name in columns} for i in range(rows)]}
    if len(outputs) == 1:
        (name, array), = outputs.items()
        return {"outputs": _jsonable(array, name)}
    return {"outputs": {name: _jsonable(array, name) for name, array in outputs.items()}}
